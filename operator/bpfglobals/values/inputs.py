"""Values files and `--set NAME=VALUE`, read with YAML 1.2 rules.

PyYAML implements YAML 1.1, where `10:20:30` is a sexagesimal integer, `0777` octal and `on`
a boolean; users of a MAC address or an interface called `on` would be surprised. This loader
keeps YAML 1.2 core-schema scalars (true/false, null, decimal/0x/0o ints, floats) and leaves
everything else a string.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from bpfglobals.errors import ValueEncodingError


class Yaml12Loader(yaml.SafeLoader):
    pass


Yaml12Loader.yaml_implicit_resolvers = {}
for tag, pattern, first in (
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    (
        "tag:yaml.org,2002:float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)"
        r"|\.(?:nan|NaN|NAN))$",
        "-+0123456789.",
    ),
):
    Yaml12Loader.add_implicit_resolver(tag, re.compile(pattern), list(first))


def _construct_int(loader: yaml.SafeLoader, node: yaml.Node) -> int:
    text = loader.construct_scalar(node)
    return int(text, 0) if text.lstrip("+-").startswith(("0x", "0o")) else int(text, 10)


def _construct_bool(loader: yaml.SafeLoader, node: yaml.Node) -> bool:
    return loader.construct_scalar(node).lower() == "true"


Yaml12Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
Yaml12Loader.add_constructor("tag:yaml.org,2002:bool", _construct_bool)


def parse_yaml(text: str, what: str) -> object:
    try:
        return yaml.load(text, Loader=Yaml12Loader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.YAMLError as e:
        raise ValueEncodingError(f"{what}: not valid YAML/JSON: {e}") from None


def load_values_file(path: str | Path) -> dict[str, object]:
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise ValueEncodingError(f"{p}: cannot read values file: {e.strerror}") from None
    data = json.loads(text) if p.suffix == ".json" and text.strip() else parse_yaml(text, str(p))
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise ValueEncodingError(f"{p}: expected a mapping of variable name to value")
    return data


def parse_set(item: str) -> tuple[str, object]:
    name, sep, raw = item.partition("=")
    if not sep or not name.strip():
        raise ValueEncodingError(f"--set {item!r}: expected NAME=VALUE")
    return name.strip(), parse_yaml(raw, f"--set {name.strip()}")


def gather_values(files: list[str], sets: list[str]) -> dict[str, object]:
    """Files in order, then --set items (later wins), the way helm merges values."""
    values: dict[str, object] = {}
    for f in files:
        values.update(load_values_file(f))
    for s in sets:
        name, value = parse_set(s)
        values[name] = value
    return values
