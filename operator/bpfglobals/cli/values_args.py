"""The `-f values.yaml` / `--set NAME=VALUE` options shared by render, load and apply."""

from __future__ import annotations

import argparse


def add_value_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-f",
        "--values",
        action="append",
        default=[],
        metavar="FILE",
        help="YAML/JSON mapping of variable name to value (repeatable)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="one value, parsed as YAML (e.g. ports='[80,443]'); wins over -f",
    )


def values_from(args: argparse.Namespace) -> dict[str, object]:
    if not args.values and not args.set:
        return {}  # no values given: YAML and the value parsers are not even imported
    from bpfglobals.values import gather_values

    return gather_values(args.values, args.set)
