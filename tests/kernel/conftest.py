"""Kernel tests need root, bpf(2) and bpffs. Missing prerequisites FAIL, never skip."""

from __future__ import annotations

import os
import subprocess

import pytest


@pytest.fixture(scope="session", autouse=True)
def kernel_prerequisites() -> None:
    if os.geteuid() != 0:
        pytest.fail("kernel tests need root (bpf(2), netns, bpffs); run `sudo make test`")
    with open("/proc/mounts") as f:
        mounted = any(line.split()[1:3] == ["/sys/fs/bpf", "bpf"] for line in f)
    if not mounted:
        subprocess.run(["mount", "-t", "bpf", "bpf", "/sys/fs/bpf"], check=True)
