"""Values files and --set follow YAML 1.2: MACs, octal-looking and yes/on stay strings."""

from __future__ import annotations

import pytest

from bpfglobals.errors import ValueEncodingError
from bpfglobals.values import gather_values, parse_set


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ("port=80", 80),
        ("mac=10:20:30:40:50:59", "10:20:30:40:50:59"),
        ("mode=0777", 777),
        ("flag=yes", "yes"),
        ("iface=on", "on"),
        ("on=true", True),
        ("hex=0x1f", 31),
        ("ports=[80,443]", [80, 443]),
        ("cfg={lim: {high: 9}}", {"lim": {"high": 9}}),
        ("addr=10.0.0.1", "10.0.0.1"),
        ("name=", None),
    ],
)
def test_set_parses_yaml_12_scalars(item: str, expected: object) -> None:
    assert parse_set(item)[1] == expected


def test_set_needs_a_name() -> None:
    with pytest.raises(ValueEncodingError, match="expected NAME=VALUE"):
        parse_set("=5")


def test_files_then_sets_later_wins(tmp_path) -> None:
    a = tmp_path / "a.yaml"
    a.write_text("drop_port: 53\nlog_level: 1\n")
    b = tmp_path / "b.json"
    b.write_text('{"log_level": 2}')
    assert gather_values([str(a), str(b)], ["drop_port=80"]) == {"drop_port": 80, "log_level": 2}


def test_a_file_that_is_not_a_mapping_is_refused(tmp_path) -> None:
    f = tmp_path / "v.yaml"
    f.write_text("- 1\n- 2\n")
    with pytest.raises(ValueEncodingError, match="expected a mapping"):
        gather_values([str(f)], [])
