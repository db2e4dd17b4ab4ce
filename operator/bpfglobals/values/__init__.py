"""Typed global values: encode user values into data-section bytes by BTF type (pure)."""

from bpfglobals.values.assign import changed_sections, configure, decode_variables, find_variable
from bpfglobals.values.codec import decode, encode
from bpfglobals.values.ctype import spell
from bpfglobals.values.inputs import gather_values, load_values_file, parse_set
from bpfglobals.values.render import render

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
