"""Names shared by the operator and the agents: API group, plurals, labels, finalizers."""

from __future__ import annotations

import hashlib

GROUP = "bpfglobals.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
PROGRAMS = "bpfprograms"
PROGRAM_NODES = "bpfprogramnodes"
LABEL_PROGRAM = f"{GROUP}/program"
LABEL_NODE = f"{GROUP}/node"
# Held by each BpfProgramNode until its agent has detached and unpinned on that node.
NODE_FINALIZER = f"{GROUP}/node-cleanup"
PROGRAM_FINALIZER = f"{GROUP}/cleanup"


def node_object_name(program: str, node: str) -> str:
    """One BpfProgramNode per (program, node); names stay within 253 characters."""
    name = f"{program}.{node}"
    if len(name) <= 253:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    return f"{program[:120]}.{node[:120]}.{digest}"
