"""Typed global values: encode user values into data-section bytes by BTF type (pure)."""

from bpfglobals.values.assign import changed_sections, configure, decode_variables, find_variable
from bpfglobals.values.codec import decode, encode
from bpfglobals.values.ctype import spell
from bpfglobals.values.render import render

_INPUTS = ("gather_values", "load_values_file", "parse_set")


def __getattr__(name: str) -> object:
    """The -f/--set readers import YAML: only when asked for (a load without values, or the
    node core, never needs them; see bench/cli_startup.py)."""
    if name in _INPUTS:
        from bpfglobals.values import inputs

        return getattr(inputs, name)
    raise AttributeError(f"module 'bpfglobals.values' has no attribute {name!r}")


__all__ = [
    "changed_sections",
    "configure",
    "decode",
    "decode_variables",
    "encode",
    "find_variable",
    "gather_values",
    "load_values_file",
    "parse_set",
    "render",
    "spell",
]
