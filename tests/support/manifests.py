"""BpfProgram documents for node-local tests and benchmarks (ELF by path)."""

from __future__ import annotations

from pathlib import Path


def bpf_program(name: str, elf: dict, programs: list[dict], globals_: dict, **spec) -> dict:
    """A BpfProgram document; `elf` as spec.elf, `programs` as spec.programs."""
    return {
        "apiVersion": "bpfglobals.io/v1alpha1",
        "kind": "BpfProgram",
        "metadata": {"name": name},
        "spec": {"elf": elf, "programs": programs, "globals": globals_, **spec},
    }


def node_manifest(name: str, elf: Path | str, programs: list[dict], globals_: dict) -> dict:
    """`programs`: [{"name": ..., "attach": {...}}, ...] as in the manifest."""
    return bpf_program(name, {"path": str(elf)}, programs, globals_)


def tracing(*programs: str) -> list[dict]:
    """Each program attached through its section's tracing hook."""
    return [{"name": p, "attach": {"tracing": {}}} for p in programs]
