"""Typed global values: encode user values into data-section bytes by BTF type (pure).

The names below are imported from their modules on first use (PEP 562): the loader needs
`configure` only, and a `load` without values neither the codec nor the -f/--set readers
(which import YAML); see bench/cli_startup.py.
"""

from __future__ import annotations

from bpfglobals.lazy import lazy_names

_MODULES = {
    "assign": "changed_sections configure decode_variables find_variable",
    "codec": "decode encode",
    "ctype": "spell",
    "render": "render",
    "inputs": "gather_values load_values_file parse_set",
}
__getattr__, __dir__ = lazy_names(__name__, globals(), _MODULES)
