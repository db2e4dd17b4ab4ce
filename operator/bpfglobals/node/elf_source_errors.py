"""The errors of fetching a BpfProgram's object (its own module: the OCI modules raise them
and `elf_source` imports those modules)."""

from __future__ import annotations

from bpfglobals.errors import BpfGlobalsError


class ElfSourceError(BpfGlobalsError):
    """The object could not be fetched, or its digest does not match spec.elf.sha256."""


class SignatureInvalid(ElfSourceError):
    """The image is unsigned, or no signature verifies with the keys spec.elf.verify names,
    or the cluster's policy requires a signature the spec does not ask for."""
