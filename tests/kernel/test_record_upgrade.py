"""An upgrade adopts what the previous release pinned: its record is migrated, not misread.

Release 1 (commit a20b8cb, the last one before the record had a version) applies a manifest in
a subprocess with its own code; this release then reads, reports and re-applies the same
state without reloading and without exit 1.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bpfglobals.node.manifest import parse_manifest
from bpfglobals.node.reconcile import NodeReconciler
from tests.support.manifests import node_manifest
from tests.support.release import source_tree

RELEASE_1 = "a20b8cb"
APPLY = """
import json, sys
from bpfglobals.node.manifest import parse_manifest
from bpfglobals.node.reconcile import NodeReconciler
r = NodeReconciler(sys.argv[1]).apply(parse_manifest(json.loads(sys.argv[2])))
print(json.dumps([r.action, r.status.programs[0].id]))
"""


@pytest.fixture(scope="module")
def release_1(tmp_path_factory) -> Path:
    return source_tree(RELEASE_1, tmp_path_factory.mktemp("release1"))


def test_record_written_by_release_1_is_adopted(
    bpf_object, node_root, cgroup_dir, release_1
) -> None:
    root, cgroup = node_root, cgroup_dir
    elf = bpf_object("live")
    attach = {"cgroup": {"path": cgroup, "type": "cgroup_skb/ingress"}}
    doc = node_manifest("up", elf, [{"name": "cg_ingress", "attach": attach}], {"verdict": 1})
    old = subprocess.run(
        [sys.executable, "-c", APPLY, root, json.dumps(doc)],
        env={"PYTHONPATH": str(release_1), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert old.returncode == 0, old.stderr
    action, prog_id = json.loads(old.stdout)
    assert action == "created"
    raw = json.loads(
        subprocess.run(
            ["bpftool", "map", "dump", "pinned", f"{root}/up/record", "-j"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    written = bytes(int(b, 16) for b in raw[0]["value"]).rstrip(b"\0")
    assert "version" not in json.loads(written)  # really the old shape

    node = NodeReconciler(root)
    assert node.names() == ["up"]
    status = node.get("up")
    assert status is not None and status.programs[0].id == prog_id
    assert status.programs[0].links[0].target == f"{cgroup} (cgroup_skb/ingress)"
    first = node.apply(parse_manifest(doc))
    # same programs, same link: only the record is rewritten (new shape, new config hash)
    assert first.action == "updated-live" and first.status.programs[0].id == prog_id
    assert node.apply(parse_manifest(doc)).action == "unchanged"
    assert node.delete("up")
