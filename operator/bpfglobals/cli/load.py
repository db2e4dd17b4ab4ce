"""`bpfglobals load OBJ --pin DIR` and `bpfglobals unload DIR`."""

from __future__ import annotations

import argparse
import sys

from bpfglobals.cli.table import format_table
from bpfglobals.cli.values_args import add_value_options, values_from
from bpfglobals.cli.verbs import help_for
from bpfglobals.kernel.bpffs import ensure_bpffs
from bpfglobals.loader import load, unload


def run_load(args: argparse.Namespace) -> int:
    if args.verbose:  # what the loader decided on the way (sizes filled in, BTF left out)
        import logging  # only here: logging is a start-up cost (see loader/log.py)

        logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    ensure_bpffs()
    obj = _read(args)
    with load(
        obj,
        values_from(args),
        pin=args.pin,
        programs=args.program or None,
        target_btf=args.btf,
    ) as loaded:
        info = loaded.to_dict()
    if args.json:
        import json  # only for --json: its regexes are compiled at import

        print(json.dumps(info, indent=2))
        return 0
    print(
        format_table(
            ["PROGRAM", "SECTION", "TYPE", "ID", "TAG", "PIN"],
            [
                [p["name"], p["section"], p["type"], p["id"], p["tag"], p["pin"]]
                for p in info["programs"]
            ],
        )
    )
    print()
    print(
        format_table(
            ["MAP", "KERNEL NAME", "TYPE", "ID", "FROZEN", "PIN"],
            [
                [m["name"], m["kernel_name"], m["type"], m["id"], m["frozen"], m["pin"]]
                for m in info["maps"]
            ],
        )
    )
    return 0


def _read(args: argparse.Namespace):
    """The parsed object: from the parsed-object cache unless --no-cache (see
    elf/object_cache.py); a cache that could not be used or written is said on stderr."""
    if args.no_cache:
        from bpfglobals.elf.reader import read_object

        return read_object(args.object)
    from bpfglobals.elf.object_cache import read_object_cached

    read = read_object_cached(args.object)
    if read.problem:
        print(f"bpfglobals: {read.problem}", file=sys.stderr)
    return read.object


def run_unload(args: argparse.Namespace) -> int:
    for path in unload(args.pin):
        print(f"removed {path}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("load", help=help_for("load"))
    p.add_argument("object")
    p.add_argument("--pin", required=True, help="bpffs directory, e.g. /sys/fs/bpf/myprog")
    p.add_argument("--program", action="append", help="load only this program (repeatable)")
    p.add_argument(
        "--btf",
        metavar="PATH",
        help="resolve CO-RE relocations against this BTF (raw BTF, or an ELF with .BTF) "
        "instead of the running kernel's /sys/kernel/btf",
    )
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--no-cache",
        action="store_true",
        help="parse the object even if its parse is cached (by sha256, in "
        "$XDG_CACHE_HOME/bpfglobals or /var/cache/bpfglobals), and cache nothing",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log the loader's decisions")
    add_value_options(p)
    p.set_defaults(func=run_load)
    u = sub.add_parser("unload", help=help_for("unload"))
    u.add_argument("pin")
    u.set_defaults(func=run_unload)
