"""A real registry (Debian's docker-registry, the distribution project's) on a free loopback
port for the OCI tests, optionally behind htpasswd auth; and the cosign/oras CLIs
tools/k8s/build.sh builds."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

from bpfglobals.devcluster.binaries import bin_dir


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tool(name: str) -> str:
    """cosign or oras, as build.sh links them into the control plane's bin directory."""
    path = bin_dir() / name
    assert path.exists(), f"{name} is built by tools/k8s/build.sh"
    return str(path)


def bcrypt_line(user: str, password: str) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # bcrypt through libxcrypt: what docker-registry's htpasswd auth reads

    return f"{user}:{crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH))}"


@contextlib.contextmanager
def registry(
    state: Path,
    users: dict[str, str] | None = None,
    port: int | None = None,
    token: dict | None = None,
) -> Iterator[str]:
    """Start docker-registry; yield its `127.0.0.1:PORT`; stop it (even on failure). The same
    `state` and `port` start the same registry again. `users`: htpasswd (Basic) auth;
    `token`: Bearer token auth (tests/support/token_auth.py's configuration)."""
    state.mkdir(parents=True, exist_ok=True)
    addr = f"127.0.0.1:{port or free_port()}"
    conf: dict = {
        "version": 0.1,
        "log": {"level": "info", "accesslog": {"disabled": False}},
        "storage": {
            "filesystem": {"rootdirectory": str(state / "data")},
            "delete": {"enabled": True},
        },
        "http": {"addr": addr},
    }
    if users:
        (state / "htpasswd").write_text("".join(bcrypt_line(u, p) + "\n" for u, p in users.items()))
        conf["auth"] = {"htpasswd": {"realm": "bpfglobals-test", "path": str(state / "htpasswd")}}
    if token:
        conf["auth"] = {"token": token}
    (state / "config.yml").write_text(json.dumps(conf))
    log = (state / "registry.log").open("a")
    proc = subprocess.Popen(
        ["docker-registry", "serve", str(state / "config.yml")], stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", int(addr.split(":")[1])), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, (state / "registry.log").read_text()[-2000:]
                assert time.monotonic() < deadline, "docker-registry did not listen in 30 s"
                time.sleep(0.1)
        yield addr
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def run(*argv: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    r = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd, timeout=300)
    assert r.returncode == 0, f"{' '.join(argv)}: {r.stderr[-2000:]}"
    return r.stdout


COSIGN_ENV = {**os.environ, "COSIGN_PASSWORD": "test-password", "COSIGN_YES": "true"}
CLI = str(Path(sys.executable).parent / "bpfglobals")

# bpfman's Containerfile.bytecode, as its docs give it: the object at the image's root, the
# program and map names in labels.
BPFMAN_CONTAINERFILE = """\
FROM scratch
ARG PROGRAMS
ARG MAPS
ARG BYTECODE_FILE
COPY $BYTECODE_FILE /
LABEL "io.ebpf.programs"=$PROGRAMS
LABEL "io.ebpf.maps"=$MAPS
"""


def push(obj: Path, ref: str, env: dict[str, str] | None = None) -> str:
    """`bpfglobals push`; returns its last line, REF@sha256:…"""
    last = run(CLI, "push", str(obj), ref, env=env).strip().splitlines()[-1]
    assert last.startswith(f"{ref}@sha256:"), last
    return last


def cosign_key_pair(directory: Path) -> Path:
    """`cosign generate-key-pair` in `directory` (cosign.key, cosign.pub); returns it."""
    directory.mkdir(parents=True, exist_ok=True)
    run(tool("cosign"), "generate-key-pair", env=COSIGN_ENV, cwd=directory)
    return directory


def cosign_sign(ref: str, key_dir: Path, *extra: str, env: dict[str, str] | None = None) -> None:
    """`cosign sign --key` without the transparency log, on a plain-HTTP loopback registry."""
    run(
        tool("cosign"), "sign", "--key", str(key_dir / "cosign.key"), "--tlog-upload=false",
        "--allow-insecure-registry", "--allow-http-registry", *extra, ref,
        env={**COSIGN_ENV, **(env or {})},
    )  # fmt: skip


def build_bpfman_image(obj: Path, tag: str, work: Path) -> str:
    """Build a bpfman bytecode image with buildah and push it; returns its manifest digest."""
    ctx = work / "bpfman-ctx"
    ctx.mkdir(parents=True, exist_ok=True)
    (ctx / obj.name).write_bytes(obj.read_bytes())
    (ctx / "Containerfile.bytecode").write_text(BPFMAN_CONTAINERFILE)
    run(
        "buildah", "bud", "--quiet", "-f", str(ctx / "Containerfile.bytecode"),
        "--build-arg", f"BYTECODE_FILE={obj.name}",
        "--build-arg", 'PROGRAMS={"xdp_drop":"xdp"}', "--build-arg", 'MAPS={"stats":"array"}',
        "-t", tag, str(ctx),
    )  # fmt: skip
    try:
        digest_file = work / "bpfman-digest"
        run("buildah", "push", "--quiet", "--tls-verify=false", "--digestfile", str(digest_file),
            tag, f"docker://{tag}")  # fmt: skip
        return digest_file.read_text().strip()
    finally:
        subprocess.run(["buildah", "rmi", tag], capture_output=True)
