"""The loader: ObjectSpec + values -> maps and programs in the kernel (libbpf's load phase)."""

from bpfglobals.loader.errors import LoadError, VerifierError
from bpfglobals.loader.load import load, select_programs, unload
from bpfglobals.loader.loaded import LoadedMap, LoadedObject, LoadedProgram

__all__ = [
    "LoadError",
    "LoadedMap",
    "LoadedObject",
    "LoadedProgram",
    "VerifierError",
    "load",
    "select_programs",
    "unload",
]
