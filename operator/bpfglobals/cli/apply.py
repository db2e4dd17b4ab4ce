"""Node-local mode: `bpfglobals apply -f FILE`, `get [NAME]`, `delete NAME`.

The same BpfProgram documents users `kubectl apply`, converged on this machine by the node
core the cluster agent uses.
"""

from __future__ import annotations

import argparse
import json
import sys

from bpfglobals.cli.table import format_table
from bpfglobals.cli.verbs import help_for
from bpfglobals.errors import BpfGlobalsError
from bpfglobals.node.layout import ROOT_ENV, default_root

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up)
if TYPE_CHECKING:
    from bpfglobals.node.status import AppliedStatus

# Each verb imports what it uses when it runs: `get` reads bpffs only, `apply` needs the ELF
# parser, the loader and YAML (see bench/cli_startup.py); `get` needs neither pathlib nor
# typing either (tests/unit/test_cli_imports.py guards the set).


def _documents(path: str) -> list[dict]:
    from pathlib import Path

    import yaml

    from bpfglobals.node.manifest import ManifestError

    try:
        text = Path(path).read_text() if path != "-" else sys.stdin.read()
    except OSError as e:
        raise ManifestError(f"{path}: {e.strerror}") from None
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as e:
        raise ManifestError(f"{path}: not valid YAML: {e}") from None
    return docs


def run_apply(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bpfglobals.node.manifest import parse_manifest
    from bpfglobals.node.reconcile import NodeReconciler

    node = NodeReconciler(args.bpffs_root)
    base = Path(args.filename).resolve().parent if args.filename != "-" else Path.cwd()
    manifests = [parse_manifest(d) for d in _documents(args.filename)]  # all valid first
    for m in manifests:
        result = node.apply(m, base)
        print(f"bpfprogram/{m.name} {result.action}")
    if args.output:
        _print([node.get(m.name) for m in manifests], args.output)
    return 0


def _print(statuses: list[AppliedStatus | None], output: str) -> None:
    items = [s.to_dict() for s in statuses if s is not None]
    if output == "json":
        print(json.dumps(items[0] if len(items) == 1 else {"items": items}, indent=2))
        return
    if output == "yaml":
        import yaml

        print(
            yaml.safe_dump(items[0] if len(items) == 1 else {"items": items}, sort_keys=False),
            end="",
        )
        return
    wide = output == "wide"
    headers = ["NAME", "PROGRAM", "PROG ID", "LINKS", "ATTACHED TO"]
    if wide:
        headers += ["TAG", "MAPS", "GLOBALS"]
    rows = []
    for s in items:
        for p in s["programs"]:
            row = [
                s["name"],
                p["name"],
                p["id"],
                ",".join(str(link["id"]) for link in p["links"]) or "-",
                ", ".join(link["target"] for link in p["links"]) or "-",
            ]
            if wide:
                row += [
                    p["tag"],
                    ",".join(f"{k}={v}" for k, v in s["maps"].items()),
                    json.dumps(s["globals"], separators=(",", ":")),
                ]
            rows.append(row)
    print(format_table(headers, rows) if rows else "No bpfprograms applied on this node.")


def run_get(args: argparse.Namespace) -> int:
    from bpfglobals.node.query import applied_names, applied_status

    root = args.bpffs_root or default_root()
    if args.name:
        status = applied_status(root, args.name)
        if status is None:
            raise BpfGlobalsError(f'bpfprogram "{args.name}" not found on this node')
        _print([status], args.output or "table")
    else:
        _print([applied_status(root, n) for n in applied_names(root)], args.output or "table")
    return 0


def run_delete(args: argparse.Namespace) -> int:
    from bpfglobals.node.reconcile import NodeReconciler

    if not NodeReconciler(args.bpffs_root).delete(args.name):
        raise BpfGlobalsError(f'bpfprogram "{args.name}" not found on this node')
    print(f"bpfprogram/{args.name} deleted")
    return 0


def _root_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--bpffs-root",
        default=None,
        help=f"state root in bpffs (default ${ROOT_ENV} or {default_root()})",
    )


def register(sub: argparse._SubParsersAction) -> None:
    a = sub.add_parser("apply", help=help_for("apply"))
    a.add_argument("-f", "--filename", required=True, help="manifest file (YAML, may hold several)")
    a.add_argument("-o", "--output", choices=["table", "wide", "json", "yaml"])
    _root_option(a)
    a.set_defaults(func=run_apply)
    g = sub.add_parser("get", help=help_for("get"))
    g.add_argument("name", nargs="?")
    g.add_argument("-o", "--output", choices=["table", "wide", "json", "yaml"])
    _root_option(g)
    g.set_defaults(func=run_get)
    d = sub.add_parser("delete", help=help_for("delete"))
    d.add_argument("name")
    _root_option(d)
    d.set_defaults(func=run_delete)
