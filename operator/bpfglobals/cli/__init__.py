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
import os
import sys
from collections.abc import Sequence

from bpfglobals.cli.verbs import VERBS
from bpfglobals.errors import BpfGlobalsError


def _verb_in(argv: Sequence[str]) -> str | None:
    """The verb named on the command line (the first argument that is not an option)."""
    first = next((a for a in argv if not a.startswith("-")), None)
    return first if first in VERBS else None


def _columns() -> int:
    """The terminal width as `shutil.get_terminal_size` computes it ($COLUMNS, else stdout's
    size, else 80), without importing shutil (and bz2, lzma) into every command."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns or 80
        except (AttributeError, ValueError, OSError):
            columns = 80
    return columns


class _Formatter(argparse.HelpFormatter):
    """argparse's own formatter; argparse builds one for every add_argument (to check the
    metavar), and the stock one imports shutil to ask for the terminal width each time."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24) -> None:
        super().__init__(prog, indent_increment, max_help_position, width=_columns() - 2)


class _Parser(argparse.ArgumentParser):
    def __init__(self, **kwargs: object) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(**kwargs)


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    parser = _Parser(
        prog="bpfglobals",
        description="Manage the global variables of eBPF programs: inspect, render, load, apply.",
    )
    # prog given: argparse would otherwise build a help formatter to compute this same
    # "bpfglobals" prefix
    sub = parser.add_subparsers(dest="verb", metavar="VERB", prog=parser.prog, parser_class=_Parser)
    sub.required = True
    verb = _verb_in(argv)
    chosen = VERBS[verb][0] if verb else None
    # A command line that starts with its verb is parsed by that verb's parser alone: the
    # other verbs' entries (an ArgumentParser each) only show in `bpfglobals --help` and in
    # the "invalid choice" error, neither of which such a line can reach.
    listed_only = not (argv and argv[0] == verb)
    for name, (module, help_) in VERBS.items():
        if module != chosen:
            if listed_only:
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
