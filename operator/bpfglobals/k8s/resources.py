"""Names shared by the operator and the agents: API group, plurals, labels, finalizers."""

from __future__ import annotations

import hashlib

GROUP = "bpfglobals.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
PROGRAMS = "bpfprograms"
# One per node, named after it, written by the operator: what that node should run. Each
# agent watches its own by name (the apiserver indexes such watches; not label-selected ones).
NODES = "bpfnodes"
# One per (program, node), written by that node's agent: what it runs (the IDs), its report.
PROGRAM_NODES = "bpfprogramnodes"
LABEL_PROGRAM = f"{GROUP}/program"
LABEL_NODE = f"{GROUP}/node"
PROGRAM_FINALIZER = f"{GROUP}/cleanup"


def node_object_name(program: str, node: str) -> str:
    """One BpfProgramNode (report) per (program, node); names stay within 253 characters."""
    name = f"{program}.{node}"
    if len(name) <= 253:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    return f"{program[:120]}.{node[:120]}.{digest}"
