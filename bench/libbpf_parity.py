"""Parity with libbpf on objects nobody here wrote: every object libbpf loads, we load, with
identical translated instructions.

Run as root:  .venv/bin/python bench/libbpf_parity.py OBJ_OR_DIR... [--verbose]

For each BPF object (`*.o`, `*.elf`; directories are searched): libbpf 1.1 loads it with
`bpftool prog loadall`, we load it with `load()`. When both load, every program's
`bpftool prog dump xlated` must match instruction for instruction (map ids normalised to
map names). Prints one line per object and the totals; exits 1 when an object libbpf loads
is refused by us or translates differently.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.bpftool import bpftool  # noqa: E402
from tests.support.xlated import normalise, xlated_by_bpftool  # noqa: E402

from bpfglobals.elf import read_object  # noqa: E402
from bpfglobals.elf.map_types import PIN_BY_NAME, PIN_GLOBAL_NS  # noqa: E402
from bpfglobals.errors import BpfGlobalsError  # noqa: E402
from bpfglobals.loader import load  # noqa: E402
from bpfglobals.loader.maps import GLOBAL_PIN_DIR  # noqa: E402


def objects(paths: list[str]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.suffix in (".o", ".elf") and _is_bpf(f))
        else:
            out.append(p)
    return out


def _is_bpf(path: Path) -> bool:
    head = path.read_bytes()[:20]
    # ELF, 64-bit, little-endian, e_machine EM_BPF (247)
    return head[:6] == b"\x7fELF\x02\x01" and int.from_bytes(head[18:20], "little") == 247


def libbpf_load(obj: Path, pin: str) -> tuple[bool, str]:
    run = subprocess.run(
        ["bpftool", "prog", "loadall", str(obj), pin], capture_output=True, text=True
    )
    lines = [ln for ln in run.stderr.splitlines() if ln.startswith("libbpf:")]
    return run.returncode == 0, (lines[-1] if lines else run.stderr.strip()[-200:])


def compare(obj: Path, tmp: Path) -> tuple[str, str]:
    """(verdict, detail): verdict is one of both, libbpf-only, ours-only, neither, differ,
    skipped."""
    pin = f"/sys/fs/bpf/bgt-parity-{uuid.uuid4().hex[:8]}"
    try:
        spec = read_object(obj)
    except BpfGlobalsError as e:
        spec, parse_error = None, e
    # libbpf pins LIBBPF_PIN_BY_NAME maps at /sys/fs/bpf/<name>, we pin iproute2's
    # PIN_GLOBAL_NS ones in tc/globals; both reuse what is there
    by_name = [
        f"/sys/fs/bpf/{m.name}" if m.pinning == PIN_BY_NAME else f"{GLOBAL_PIN_DIR}/{m.name}"
        for m in (spec.maps if spec else [])
        if m.pinning in (PIN_BY_NAME, PIN_GLOBAL_NS)
    ]
    stale = [p for p in by_name if os.path.exists(p)]
    if stale:
        return "skipped", f"{stale[0]} exists: libbpf would reuse it"
    try:
        theirs, why_not = libbpf_load(obj, pin)
        try:
            if spec is None:
                raise parse_error
            ours = load(spec)
        except BpfGlobalsError as e:
            first = str(e).splitlines()[0]
            return ("libbpf-only" if theirs else "neither"), first
        with ours:
            if not theirs:
                return "ours-only", why_not
            for name, prog in ours.programs.items():
                their_id = bpftool("prog", "show", "pinned", f"{pin}/{name}")["id"]
                if normalise(xlated_by_bpftool(prog.info.id, tmp)) != normalise(
                    xlated_by_bpftool(their_id, tmp)
                ):
                    return "differ", f"program {name}"
            return "both", f"{len(ours.programs)} programs identical"
    finally:
        subprocess.run(["rm", "-rf", pin, *by_name], check=False)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="+")
    ap.add_argument("--verbose", action="store_true", help="print every object's line")
    args = ap.parse_args()
    counts: dict[str, int] = {}
    made = [d for d in (os.path.dirname(GLOBAL_PIN_DIR), GLOBAL_PIN_DIR) if not os.path.isdir(d)]
    with tempfile.TemporaryDirectory() as d:
        for obj in objects(args.paths):
            verdict, detail = compare(obj, Path(d))
            counts[verdict] = counts.get(verdict, 0) + 1
            if args.verbose or verdict in ("libbpf-only", "differ", "skipped"):
                print(f"{verdict:12} {obj}: {detail}")
    for d in reversed(made):  # the PIN_GLOBAL_NS directory our loads made, when empty
        with contextlib.suppress(OSError):
            os.rmdir(d)
    libbpf = counts.get("both", 0) + counts.get("libbpf-only", 0) + counts.get("differ", 0)
    ours = counts.get("both", 0) + counts.get("ours-only", 0) + counts.get("differ", 0)
    print(
        f"objects {sum(counts.values())}: libbpf loads {libbpf}, bpfglobals loads {ours}, "
        f"identical xlated {counts.get('both', 0)}, differ {counts.get('differ', 0)}, "
        f"libbpf only {counts.get('libbpf-only', 0)}, ours only {counts.get('ours-only', 0)}"
    )
    return 1 if counts.get("libbpf-only") or counts.get("differ") else 0


if __name__ == "__main__":
    sys.exit(main())
