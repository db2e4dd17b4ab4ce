"""The applied record in bpffs: a pinned one-entry array map holding its JSON.

Keeping it in bpffs gives it the lifetime of the programs it describes (a reboot clears both)
and makes the update atomic: one BPF_MAP_UPDATE_ELEM replaces the whole value.
"""

from __future__ import annotations

import os

from bpfglobals.kernel.constants import BPF_ARRAY
from bpfglobals.kernel.maps import map_create, map_lookup, map_update
from bpfglobals.kernel.objects import map_info, obj_get, obj_pin
from bpfglobals.node.record import AppliedRecord, RecordError, decode, encode

RECORD_SIZE = 1 << 16
_KEY = bytes(4)


def read_record(path: str) -> AppliedRecord | None:
    if not os.path.exists(path):
        return None
    with obj_get(path) as fd:
        raw = map_lookup(fd, _KEY, map_info(fd).value_size).rstrip(b"\0")
    if not raw:
        return None
    return decode(raw, path)


def write_record(path: str, record: AppliedRecord) -> None:
    raw = encode(record)
    if len(raw) > RECORD_SIZE:
        raise RecordError(f"{path}: applied record of {len(raw)} bytes exceeds {RECORD_SIZE}")
    value = raw + bytes(RECORD_SIZE - len(raw))
    if os.path.exists(path):
        with obj_get(path) as fd:
            map_update(fd, _KEY, value)
        return
    with map_create(
        map_type=BPF_ARRAY, key_size=4, value_size=RECORD_SIZE, max_entries=1, name="bpfg_record"
    ) as fd:
        map_update(fd, _KEY, value)
        obj_pin(fd, path)
