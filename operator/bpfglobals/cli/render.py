"""`bpfglobals render OBJ -o OUT`: a copy of OBJ whose globals have new defaults."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from bpfglobals.cli.values_args import add_value_options, values_from
from bpfglobals.cli.verbs import help_for
from bpfglobals.elf import read_object
from bpfglobals.values import render


def run(args: argparse.Namespace) -> int:
    obj = read_object(args.object)
    data = render(obj, values_from(args))
    out = Path(args.output)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    tmp.replace(out)  # never leave a half-written object behind
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("render", help=help_for("render"))
    p.add_argument("object")
    p.add_argument("-o", "--output", required=True, help="where to write the new object")
    add_value_options(p)
    p.set_defaults(func=run)
