"""Typed global values: encode user values into data-section bytes by BTF type (pure).

The names below are imported from their modules on first use (PEP 562): the loader needs
`configure` only, and a `load` without values neither the codec nor the -f/--set readers
(which import YAML); see bench/cli_startup.py.
"""

from __future__ import annotations

from bpfglobals.lazy import lazy_names

_HOME = {
    "changed_sections": "assign",
    "configure": "assign",
    "decode_variables": "assign",
    "find_variable": "assign",
    "decode": "codec",
    "encode": "codec",
    "spell": "ctype",
    "render": "render",
    "gather_values": "inputs",
    "load_values_file": "inputs",
    "parse_set": "inputs",
}

__all__ = sorted(_HOME)
__getattr__, __dir__ = lazy_names(__name__, globals(), _HOME)
