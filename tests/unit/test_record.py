"""The applied record: typed, versioned, and migrated from the shape release 1 wrote."""

from __future__ import annotations

import json

import pytest

from bpfglobals.node.record import RECORD_VERSION, AppliedRecord, RecordError, decode, encode

# A record exactly as release 1 (commit a20b8cb, node/reconcile.py) wrote it: no version, the
# links under "programs" as {name, key, target, kind}, "elf" the manifest's path.
RELEASE_1 = {
    "configHash": "0c1f8a2d9e11",
    "elf": "/opt/xdp_drop.bpf.o",
    "elfSha256": "ab" * 32,
    "globals": {"drop_port": 53},
    "live": {"drop_icmp": "00", "last_dropped_saddr": "00000000"},
    "loadedAt": "2026-11-27T10:00:00Z",
    "name": "drop",
    "programs": [
        {"key": "xdp_eth0", "kind": "xdp", "name": "xdp_drop", "target": "eth0 (generic)"},
        {"key": "tracing_section", "kind": "tracing", "name": "count", "target": "sys_enter"},
    ],
    "roKey": "5d1e0c3a9b7f2e41",
    "variant": 7,
}


def test_release_1_record_migrates_to_the_typed_record() -> None:
    rec = decode(json.dumps(RELEASE_1))
    assert rec.version == RECORD_VERSION
    assert (rec.name, rec.variant, rec.ro_key) == ("drop", 7, "5d1e0c3a9b7f2e41")
    assert rec.elf == "path /opt/xdp_drop.bpf.o" and rec.elf_sha256 == "ab" * 32
    assert rec.globals == {"drop_port": 53} and rec.live == RELEASE_1["live"]
    assert [(k.program, k.key, k.kind, k.target) for k in rec.links] == [
        ("xdp_drop", "xdp_eth0", "xdp", "eth0 (generic)"),
        ("count", "tracing_section", "tracing", "sys_enter"),
    ]
    # the link pins release 1 made are the ones the new code looks for
    assert [k.pin_name for k in rec.links] == ["xdp_drop__xdp_eth0", "count__tracing_section"]
    assert rec.programs == ["xdp_drop", "count"]


def test_current_record_round_trips() -> None:
    rec = decode(json.dumps(RELEASE_1))
    again = decode(encode(rec))
    assert again == rec and isinstance(again, AppliedRecord)
    assert json.loads(encode(rec))["version"] == RECORD_VERSION


@pytest.mark.parametrize(
    ("doc", "why"),
    [
        ({**RELEASE_1, "version": RECORD_VERSION + 1}, "written by a newer bpfglobals"),
        ({k: v for k, v in RELEASE_1.items() if k != "roKey"}, "missing field 'roKey'"),
        ({**RELEASE_1, "programs": "xdp"}, "not a bpfglobals record"),
    ],
)
def test_unreadable_records_are_refused_with_the_reason(doc: dict, why: str) -> None:
    with pytest.raises(RecordError, match=why):
        decode(json.dumps(doc), "/sys/fs/bpf/bpfglobals/drop/record")
    with pytest.raises(RecordError, match="not a bpfglobals record"):
        decode(b"\x00garbage")
