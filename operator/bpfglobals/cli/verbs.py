"""The verbs of `bpfglobals`: the module that implements each, and its one-line help.

Plain data with no imports, so `bpfglobals --help` lists every verb without importing any
of them, and a verb imports only its own module (`bpfglobals get` never loads the ELF parser,
the loader, kopf or the dev cluster's PKI).
"""

from __future__ import annotations

# verb -> (module in bpfglobals.cli, help). The order is the order `--help` lists them.
VERBS: dict[str, tuple[str, str]] = {
    "inspect": ("inspect", "show programs, maps and global variables of an object"),
    "render": ("render", "write a copy of an object with new global defaults"),
    "load": ("load", "load an object with configured globals and pin it"),
    "unload": ("load", "remove what `load --pin DIR` pinned"),
    "apply": ("apply", "converge this machine to BpfProgram manifest(s)"),
    "get": ("apply", "show applied BpfPrograms: program, map and link IDs"),
    "delete": ("apply", "detach and unpin an applied BpfProgram"),
    "push": ("push", "publish an object to an OCI registry (prints REF@sha256:...)"),
    "validate": ("validate", "check BpfProgram manifests against their objects (CI)"),
    "dev-cluster": ("devcluster", "a local control plane on loopback (--node: a kubelet)"),
    "operator": ("operator", "run the BpfProgram operator (kopf) in the foreground"),
    "agent": ("agent", "run the node agent in the foreground"),
}


def help_for(verb: str) -> str:
    return VERBS[verb][1]
