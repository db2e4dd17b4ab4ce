"""CLI start-up benchmark: whole processes, `.pyc` cached, peers measured in the same run.

Run as root:  .venv/bin/python bench/cli_startup.py [--runs N] [--before COMMIT]

Times (median wall time of N runs, after one warm-up run that also writes the .pyc files;
PYTHONDONTWRITEBYTECODE is removed from the environment, else nothing would be cached):
- `python -c pass`: the interpreter's own floor;
- `bpfglobals --help`, `bpfglobals get` (one applied program), `bpfglobals load` of the
  example (examples/xdp_drop.bpf.c, pinned, unpinned again untimed after each run), twice:
  "cold", the first sight of the object (an empty parsed-object cache, emptied again untimed
  after each run: the ELF is parsed with pyelftools and the parse written to the cache), and
  "warm", the object seen before (its parse read from the cache, elf/object_cache.py);
- `bpftool prog loadall` of the same object (libbpf, C): the peer for `load`.
Ratios: each against `python -c pass`, and `load` against bpftool. With `--instructions`, each
command also runs once under valgrind (callgrind) and the instructions it executed are
printed: a count the other jobs on a shared machine do not move, unlike wall and CPU time
(callgrind counts user-space instructions; the kernel's share of `load` is not in it).
With `--before COMMIT`, the
same commands run from that commit's source tree too (e.g. a20b8cb: every verb imported at
start-up), so the change is measured on the same machine in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.manifests import node_manifest  # noqa: E402
from tests.support.progs import compile_bpf  # noqa: E402
from tests.support.release import source_tree  # noqa: E402

MAIN = "import sys; from bpfglobals.cli import main; sys.exit(main())"


def cli_command(py: str) -> list[str]:
    """What a user runs: the console script pip generated next to the interpreter
    (`bpfglobals.cli:main`), run by that interpreter so PYTHONPATH picks the source tree;
    the same two lines through -c when the package is not installed."""
    script = Path(py).with_name("bpfglobals")
    if script.is_file() and "from bpfglobals.cli import main" in script.read_text():
        return [py, str(script)]
    return [py, "-c", MAIN]


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall time, and the CPU time (user + system) the process used: on a machine shared with
    other jobs the second is close to what the wall time would be on an idle one."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def interleaved(commands: dict[str, tuple[list[str], dict[str, str], object]], runs: int):
    """Median ms per command. Every round runs each command once, so a machine whose load
    changes during the benchmark (other jobs on these 2 cores) slows all of them alike."""
    for cmd, env, after in commands.values():  # warm-up: writes the .pyc files
        run(cmd, env)
        if after:
            after()
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in commands}
    for _ in range(runs):
        for label, (cmd, env, after) in commands.items():
            times[label].append(run(cmd, env))
            if after:
                after()
    return {
        k: (statistics.median(w for w, _ in v) * 1000, statistics.median(c for _, c in v) * 1000)
        for k, v in times.items()
    }


def instructions(commands: dict[str, tuple[list[str], dict[str, str], object]]) -> dict:
    """Millions of user-space instructions each command executes (one run under callgrind)."""
    out = {}
    for label, (cmd, env, after) in commands.items():
        grind = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *cmd]
        r = subprocess.run(grind, env=env, capture_output=True, text=True, check=True)
        if after:
            after()
        collected = [ln for ln in r.stderr.splitlines() if "Collected :" in ln]
        out[label] = int(collected[-1].split(":")[-1]) / 1e6
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=21)
    ap.add_argument("--before", help="also time the CLI of this commit (e.g. a20b8cb)")
    ap.add_argument(
        "--instructions",
        action="store_true",
        help="also count each command's instructions once under valgrind (callgrind)",
    )
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bpfg-startup-"))
    tag = uuid.uuid4().hex[:8]
    root = f"/sys/fs/bpf/bgt-startup-{tag}"
    pin = f"/sys/fs/bpf/bgt-startup-pin-{tag}"
    dev = f"bgt-su{tag[:6]}"  # a veth interface for `get`'s applied program to attach to
    py = sys.executable
    cleanup: list[tuple[list[str], dict[str, str], str]] = []
    subprocess.run(
        ["ip", "link", "add", dev, "type", "veth", "peer", "name", dev + "p"], check=True
    )
    try:
        obj = compile_bpf(ROOT / "examples/xdp_drop.bpf.c", tmp)
        trees = {"this tree": ROOT / "operator"}
        if args.before:
            trees[args.before] = source_tree(args.before, tmp / "before")

        def unpin() -> None:
            shutil.rmtree(pin, ignore_errors=True)

        unset = ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE", "XDG_CACHE_HOME")
        base_env = {k: v for k, v in os.environ.items() if k not in unset}
        base_env["XDG_CACHE_HOME"] = str(tmp / "cache-warm")  # parsed-object cache, kept
        commands: dict[str, tuple[list[str], dict[str, str], object]] = {
            "python -c pass": ([py, "-c", "pass"], base_env, None),
            "bpftool prog loadall": (
                ["bpftool", "prog", "loadall", str(obj), pin],
                base_env,
                unpin,
            ),
        }
        for n, (label, tree) in enumerate(trees.items()):
            env = {**base_env, "PYTHONPATH": str(tree)}
            manifest = tmp / f"m{n}.json"
            attach = {"xdp": {"interface": (dev, dev + "p")[n], "mode": "generic"}}
            progs = [{"name": "xdp_drop", "attach": attach}]
            manifest.write_text(json.dumps(node_manifest("startup", obj, progs, {})))
            cli = cli_command(py)
            roots = f"{root}-{len(commands)}"
            subprocess.run(
                [*cli, "apply", "-f", str(manifest), "--bpffs-root", roots],
                env=env,
                check=True,
            )
            commands[f"bpfglobals --help [{label}]"] = ([*cli, "--help"], env, None)
            commands[f"bpfglobals get [{label}]"] = (
                [*cli, "get", "--bpffs-root", roots],
                env,
                None,
            )
            load = [*cli, "load", str(obj), "--pin", pin]
            if n == 0:  # the parsed-object cache is this tree's
                cold = tmp / "cache-cold"
                cold_env = {**env, "XDG_CACHE_HOME": str(cold)}

                def unpin_and_forget(cold: Path = cold) -> None:
                    unpin()
                    shutil.rmtree(cold, ignore_errors=True)

                commands[f"bpfglobals load, cold [{label}]"] = (load, cold_env, unpin_and_forget)
                commands[f"bpfglobals load, warm [{label}]"] = (load, env, unpin)
            else:
                commands[f"bpfglobals load [{label}]"] = (load, env, unpin)
            cleanup.append(([*cli, "delete", "startup", "--bpffs-root", roots], env, roots))
        result = interleaved(commands, args.runs)
        floor, bpftool = result["python -c pass"], result["bpftool prog loadall"]
        print(f"runs per command: {args.runs}, interleaved; medians; whole process, .pyc cached")
        print(f"bpfglobals is: {' '.join(cli_command(py))}")
        print(f"{'':40} {'wall':>9} {'cpu':>9}   ratios (wall / cpu)")
        for label, (wall, cpu) in result.items():
            ratios = ""
            if label.startswith("bpfglobals"):
                ratios = f"   {wall / floor[0]:5.2f}x / {cpu / floor[1]:5.2f}x python"
                if " load" in label:
                    ratios += f",  {wall / bpftool[0]:5.1f}x / {cpu / bpftool[1]:5.1f}x bpftool"
            print(f"{label:40} {wall:6.1f} ms {cpu:6.1f} ms{ratios}")
        if args.instructions:
            counts = instructions(commands)
            base = counts["python -c pass"]
            print("\ninstructions (valgrind callgrind, one run each, user space)")
            for label, n in counts.items():
                print(f"{label:40} {n:7.1f} M   {n / base:5.2f}x python")
    finally:
        for argv, env, roots in cleanup:
            subprocess.run(argv, env=env, check=False, capture_output=True)
            subprocess.run(["rm", "-rf", roots], check=False)
        shutil.rmtree(pin, ignore_errors=True)
        subprocess.run(["ip", "link", "del", dev], check=False)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
