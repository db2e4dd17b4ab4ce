"""The `bpfglobals` command: a thin dispatcher over one module per verb.

Each verb module in this package exposes `register(subparsers)`, which adds its sub-parser and
sets `func` to a function `(args) -> int`. Exit codes: 0 success, 2 for user errors (one line,
no traceback), 1 for bugs (traceback).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from bpfglobals.errors import BpfGlobalsError

# Verb modules, in the order `--help` lists them. A module that is not there yet is skipped so
# the layers can land one at a time.
VERB_MODULES = (
    "inspect",
    "render",
    "load",
    "apply",
    "devcluster",
    "operator",
    "agent",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bpfglobals",
        description="Manage the global variables of eBPF programs: inspect, render, load, apply.",
    )
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    sub.required = True
    for name in VERB_MODULES:
        try:
            module = importlib.import_module(f"bpfglobals.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"bpfglobals.cli.{name}":
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BpfGlobalsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
