"""`bpfglobals validate -f FILE... [--elf PATH] [--fetch] [-o json]`: the webhook's checks,
offline, for CI pipelines (pre-merge in a GitOps repository).

Every BpfProgram document of every file is parsed as the apiserver and the agents do and
checked against its object (programs, every global, every node override and `fromNode`
source) with the agents' codec. The object is `--elf PATH`, else `spec.elf.path` (relative to
the file), else, with `--fetch`, the URL or ConfigMap (through the current kubeconfig); its
digest is checked against `spec.elf.sha256`. Documents of other kinds are skipped. One line
per problem, `FILE:INDEX: bpfprogram/NAME: what`; exit 0 when there is none, 2 otherwise (a
document whose object could not be read counts as a problem: nothing passes unchecked).
"""

from __future__ import annotations

import argparse
import sys

from bpfglobals.cli.verbs import help_for

TYPE_CHECKING = False
if TYPE_CHECKING:
    from bpfglobals.node.elf_source import ElfSources
    from bpfglobals.node.manifest import ElfSource


def _documents(path: str) -> list[object]:
    import yaml

    from bpfglobals.node.manifest import ManifestError

    try:
        text = sys.stdin.read() if path == "-" else open(path).read()  # noqa: SIM115
    except OSError as e:
        raise ManifestError(f"{path}: {e.strerror}") from None
    try:
        return list(yaml.safe_load_all(text))
    except yaml.YAMLError as e:
        raise ManifestError(f"{path}: not valid YAML: {e}") from None


def _is_bpfprogram(doc: object) -> bool:
    from bpfglobals.node.manifest import API_VERSION, KIND

    return (
        isinstance(doc, dict)
        and doc.get("kind") == KIND
        and str(doc.get("apiVersion", "")).split("/")[0] == API_VERSION.split("/")[0]
    )


def _source(src: ElfSource, elf: str | None) -> ElfSource:
    """`--elf PATH` in place of the document's own source (its digest still checked)."""
    if elf is None:
        return src
    import os

    from bpfglobals.node.manifest import ElfSource

    # relative to where the command runs (a document's own path is relative to its file)
    return ElfSource(path=os.path.abspath(elf), sha256=src.sha256)


def _sources(fetch: bool) -> ElfSources:
    from bpfglobals.node.elf_source import ConfigMapReader, ElfSources

    reader: ConfigMapReader | None = None
    if fetch:  # only then the Kubernetes client, and only when a ConfigMap is met

        def reader(ref):  # type: ignore[no-redef]
            from kubernetes import client

            from bpfglobals.k8s.client import load_config
            from bpfglobals.k8s.elf_source import config_map_reader

            load_config()
            return config_map_reader(client.CoreV1Api())(ref)

    return ElfSources(reader)


def check_file(path: str, args: argparse.Namespace, sources: ElfSources) -> tuple[int, list]:
    """(BpfProgram documents checked, problems as (index, name, message))."""
    import os

    from bpfglobals.errors import BpfGlobalsError
    from bpfglobals.node.check import problems
    from bpfglobals.node.manifest import parse_manifest

    base = os.path.dirname(os.path.abspath(path)) if path != "-" else os.getcwd()
    checked, out = 0, []
    for i, doc in enumerate(_documents(path)):
        if not _is_bpfprogram(doc):
            continue
        checked += 1
        name = str(((doc.get("metadata") or {}) if isinstance(doc, dict) else {}).get("name"))
        try:
            m = parse_manifest(doc)
            src = _source(m.elf, args.elf)
            if not args.fetch and args.elf is None and src.path is None:
                raise BpfGlobalsError(
                    f"spec.elf {src.describe()}: not read (give --elf PATH, or --fetch to "
                    "fetch URL and ConfigMap sources)"
                )
            obj = sources.parse(sources.fetch(src, base))
            out.extend((i, name, p) for p in problems(m, obj))
        except BpfGlobalsError as e:
            out.append((i, name, str(e)))
    return checked, out


def run(args: argparse.Namespace) -> int:
    sources = _sources(args.fetch)
    found, checked = [], 0
    for path in args.filename:
        n, problems = check_file(path, args, sources)
        checked += n
        found.extend((path, i, name, msg) for i, name, msg in problems)
    if args.output == "json":
        import json

        print(
            json.dumps(
                {
                    "checked": checked,
                    "problems": [
                        {"file": f, "document": i, "name": n, "message": m} for f, i, n, m in found
                    ],
                },
                indent=2,
            )
        )
    else:
        for f, i, n, m in found:
            print(f"{f}:{i}: bpfprogram/{n}: {' '.join(m.split())}")
        print(f"{checked} BpfProgram document(s) checked, {len(found)} problem(s)", file=sys.stderr)
    return 2 if found else 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help=help_for("validate"))
    p.add_argument(
        "-f",
        "--filename",
        action="extend",
        nargs="+",
        required=True,
        help="manifest files (- for stdin)",
    )
    p.add_argument("--elf", help="check against this object instead of each document's source")
    p.add_argument(
        "--fetch",
        action="store_true",
        help="fetch spec.elf.url and spec.elf.configMap (through the current kubeconfig)",
    )
    p.add_argument("-o", "--output", choices=["text", "json"], default="text")
    p.set_defaults(func=run)
