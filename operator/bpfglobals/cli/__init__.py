"""The `bpfglobals` command: a thin dispatcher over one module per verb, imported on demand.

Each verb module in this package exposes `register(subparsers)`, which adds its sub-parsers
and sets `func` to a function `(args) -> int`; `verbs.VERBS` says which module holds which
verb. Only the module of the verb on the command line is imported; the other verbs get a
parser with their help line only. Exit codes: 0 success, 2 for user errors (one line, no
traceback), 1 for bugs (traceback).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from bpfglobals.cli.verbs import VERBS
from bpfglobals.errors import BpfGlobalsError


def _verb_in(argv: Sequence[str]) -> str | None:
    """The verb named on the command line (the first argument that is not an option)."""
    first = next((a for a in argv if not a.startswith("-")), None)
    return first if first in VERBS else None


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bpfglobals",
        description="Manage the global variables of eBPF programs: inspect, render, load, apply.",
    )
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    sub.required = True
    verb = _verb_in(argv)
    chosen = VERBS[verb][0] if verb else None
    for name, (module, help_) in VERBS.items():
        if module != chosen:
            sub.add_parser(name, help=help_, add_help=False)  # listed, never run
        elif name == verb:  # the module registers all of its verbs at once
            importlib.import_module(f"bpfglobals.cli.{module}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
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
