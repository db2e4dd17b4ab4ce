"""Kernel tests need root, bpf(2) and bpffs. Missing prerequisites FAIL, never skip."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def kernel_prerequisites() -> None:
    if os.geteuid() != 0:
        pytest.fail("kernel tests need root (bpf(2), netns, bpffs); run `sudo make test`")
    with open("/proc/mounts") as f:
        mounted = any(line.split()[1:3] == ["/sys/fs/bpf", "bpf"] for line in f)
    if not mounted:
        subprocess.run(["mount", "-t", "bpf", "bpf", "/sys/fs/bpf"], check=True)


@pytest.fixture(scope="session")
def vmlinux_h(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with vmlinux.h dumped from the running kernel (for tests/progs/corpus)."""
    out = tmp_path_factory.mktemp("vmlinux")
    header = subprocess.run(
        ["bpftool", "btf", "dump", "file", "/sys/kernel/btf/vmlinux", "format", "c"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (out / "vmlinux.h").write_text(header)
    return out


@pytest.fixture
def node_root():
    """A fresh state root for the node core in bpffs, removed afterwards."""
    path = f"/sys/fs/bpf/bgt-node-{uuid.uuid4().hex[:8]}"
    yield path
    subprocess.run(["rm", "-rf", path], check=False)


@pytest.fixture
def cgroup_dir():
    """A fresh cgroup v2 directory, removed afterwards (programs attach there, not to ours)."""
    base = "/sys/fs/cgroup/unified" if os.path.isdir("/sys/fs/cgroup/unified") else "/sys/fs/cgroup"
    path = os.path.join(base, f"bgt-{uuid.uuid4().hex[:6]}")
    os.mkdir(path)
    yield path
    os.rmdir(path)
