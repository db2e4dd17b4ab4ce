"""`bpfglobals push OBJ REF`: publish an object as the plain OCI artifact; the last line is
the pushed reference with its digest (`REF@sha256:…`), what spec.elf.image.reference takes."""

from __future__ import annotations

import argparse
import os

from bpfglobals.cli.verbs import help_for
from bpfglobals.errors import BpfGlobalsError


def run(args: argparse.Namespace) -> int:
    from bpfglobals.elf import read_object_bytes
    from bpfglobals.node.oci.push import push_object
    from bpfglobals.node.oci.reference import parse_reference
    from bpfglobals.node.oci.registry import Credentials

    ref = parse_reference(args.ref)
    try:
        with open(args.object, "rb") as f:
            data = f.read()
    except OSError as e:
        raise BpfGlobalsError(f"push: cannot read {args.object}: {e.strerror}") from None
    name = os.path.basename(args.object)
    obj = read_object_bytes(data, name)  # refuse what is not a BPF object before pushing it
    user = os.environ.get("BPFGLOBALS_REGISTRY_USERNAME")
    creds = Credentials(user, os.environ.get("BPFGLOBALS_REGISTRY_PASSWORD", "")) if user else None
    digest = push_object(ref, name, data, insecure=args.insecure, credentials=creds)
    print(f"pushed {name}: {len(obj.programs)} program(s), {len(data)} bytes")
    print(f"{args.ref}@{digest}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("push", help=help_for("push"))
    p.add_argument("object", metavar="OBJ", help="the BPF object file (.o)")
    p.add_argument("ref", metavar="REF", help="host/repository[:tag] (default tag: latest)")
    p.add_argument(
        "--insecure",
        action="store_true",
        help="plain HTTP to a registry that is not on the loopback (loopback always is)",
    )
    p.set_defaults(func=run)
