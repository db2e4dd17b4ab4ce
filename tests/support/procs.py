"""What a process exposes: its listening TCP sockets (from `ss`)."""

from __future__ import annotations

import subprocess


def listening(pid: int) -> list[str]:
    """host:port of every TCP socket `pid` listens on."""
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    return [line.split()[3] for line in out.splitlines() if f"pid={pid}," in line]
