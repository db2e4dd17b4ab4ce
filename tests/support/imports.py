"""What a `bpfglobals` command imports: run it in a fresh interpreter, read sys.modules.

The start-up budget of issue 16 is guarded by module set, never by time (timings live in
bench/cli_startup.txt); the sets are shared by the unit tests and the kernel tests that run
`get` and `load` for real.
"""

from __future__ import annotations

import ast
import subprocess
import sys

PROBE = """
import sys
from bpfglobals.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(repr(sorted(sys.modules)), file=sys.stderr)
"""  # repr, not json: the probe imports nothing the command may not import itself
HEAVY = ("yaml", "kopf", "kubernetes", "cryptography", "prometheus_client")


def modules_for(*argv: str) -> tuple[set[str], str]:
    r = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, check=True
    )
    return set(ast.literal_eval(r.stderr.strip().splitlines()[-1])), r.stdout


# Standard-library modules that cost a large share of the start-up budget (issue 16): each
# pulls in a tree of its own (dataclasses -> inspect -> ast, dis, tokenize; pathlib -> urllib,
# ipaddress; logging -> traceback, threading; shutil -> bz2, lzma). Guarded by module set,
# never by time (timings live in bench/cli_startup.txt).
GET_NEVER = (
    "dataclasses",
    "inspect",
    "typing",
    "pathlib",
    "shutil",
    "logging",
    "hashlib",
    "ctypes",
    "cffi",  # the package (pycparser's parser): the pre-parsed ABI needs _cffi_backend only
    "pycparser",
    "elftools",  # get reads bpffs, never an ELF
    "bpfglobals.cli.load",
    "bpfglobals.cli.inspect",
    "bpfglobals.cli.devcluster",
)
LOAD_NEVER = (
    "cffi",
    "pycparser",
    "hashlib",
    "ctypes",
    "pathlib",
    "shutil",
    "logging",  # imported by `load -v` and on the loader's first message only
    "gzip",
    "ipaddress",  # values written as IP addresses import it when met
    "json",  # `load --json` only
)
