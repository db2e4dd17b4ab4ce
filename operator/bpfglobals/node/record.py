"""The applied record, kept in bpffs as a pinned one-entry array map holding JSON.

Keeping it in bpffs gives it the lifetime of the programs it describes (a reboot clears both)
and makes the update atomic: one BPF_MAP_UPDATE_ELEM replaces the whole value.
"""

from __future__ import annotations

import json
import os
from typing import Any

from bpfglobals.errors import BpfGlobalsError
from bpfglobals.kernel.constants import BPF_ARRAY
from bpfglobals.kernel.maps import map_create, map_lookup, map_update
from bpfglobals.kernel.objects import map_info, obj_get, obj_pin

RECORD_SIZE = 1 << 16
_KEY = bytes(4)


def read_record(path: str) -> dict[str, Any] | None:
    if not os.path.exists(path):
        return None
    with obj_get(path) as fd:
        raw = map_lookup(fd, _KEY, map_info(fd).value_size).rstrip(b"\0")
    if not raw:
        return None
    return json.loads(raw)


def write_record(path: str, record: dict[str, Any]) -> None:
    raw = json.dumps(record, sort_keys=True, separators=(",", ":")).encode()
    if len(raw) > RECORD_SIZE:
        raise BpfGlobalsError(f"applied record of {len(raw)} bytes exceeds {RECORD_SIZE}")
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
