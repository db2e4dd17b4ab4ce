"""veth pairs for attach tests, always removed afterwards."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import uuid
from collections.abc import Iterator


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@contextlib.contextmanager
def veth_pair() -> Iterator[tuple[str, str]]:
    a = f"bgt{uuid.uuid4().hex[:8]}"
    b = a + "p"
    ip("link", "add", a, "type", "veth", "peer", "name", b)
    try:
        ip("link", "set", a, "up")
        ip("link", "set", b, "up")
        yield a, b
    finally:
        subprocess.run(["ip", "link", "del", a], capture_output=True)


def ifindex(name: str) -> int:
    return socket.if_nametoindex(name)
