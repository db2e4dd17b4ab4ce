"""What the nodes are asked to run (their BpfNodes) and what they report (BpfProgramNodes),
read through kubectl as a user would: the e2e tests' view of a rollout."""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from tests.support.kubectl import Kubectl


class OnNode(NamedTuple):
    asked: str | None  # the config hash the node's BpfNode asks for (None: not asked)
    running: str | None  # the config hash its report says runs
    phase: str | None
    entry: dict[str, Any] | None  # the BpfNode's entry
    report: dict[str, Any] | None  # the BpfProgramNode


def asked(kubectl: Kubectl, node: str) -> dict[str, Any]:
    """The programs the node's BpfNode asks for (empty: it has no BpfNode)."""
    out = kubectl("get", "bpfnode", node, "-o", "json", check=False)
    return json.loads(out.stdout)["spec"]["programs"] if out.returncode == 0 else {}


def program_on_nodes(kubectl: Kubectl, program: str) -> dict[str, OnNode]:
    """Node -> the program there, for every node asked for it or reporting it."""
    bpfnodes = json.loads(kubectl("get", "bpfnodes", "-o", "json").stdout)["items"]
    entries = {
        o["spec"]["nodeName"]: o["spec"]["programs"][program]
        for o in bpfnodes
        if program in o["spec"].get("programs", {})
    }
    listing = kubectl(
        "get", "bpfprogramnodes", "-l", f"bpfglobals.io/program={program}", "-o", "json"
    ).stdout
    reports = {o["spec"]["nodeName"]: o for o in json.loads(listing)["items"]}
    view = {}
    for node in entries.keys() | reports.keys():
        e, r = entries.get(node), reports.get(node)
        st = (r or {}).get("status") or {}
        view[node] = OnNode(
            e["configHash"] if e else None, st.get("configHash"), st.get("phase"), e, r
        )
    return view
