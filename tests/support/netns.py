"""Test hosts: a network namespace joined to the root namespace by a veth pair.

Addresses come from a documentation/benchmark range (TEST-NET-2/3, 198.18/15) that no route
or address on this machine uses yet (some machines number their own uplink from TEST-NET-1).
IPv6 is off and neighbours are static so that the only packets on the wire are the ones a test
sends.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SENDER = Path(__file__).resolve().parents[2] / "examples" / "udp_send.py"


def sh(*cmd: str) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


@dataclass(frozen=True)
class NetPair:
    ns: str  # the peer's namespace: where test traffic comes from
    host_if: str  # where programs are attached (in `host_ns`, or the root namespace)
    peer_if: str  # inside `ns`
    host_ip: str
    peer_ip: str
    host_ns: str | None = None  # a simulated node's own namespace

    @property
    def host_netns_path(self) -> str | None:
        return f"/run/netns/{self.host_ns}" if self.host_ns else None

    def send_udp(self, port: int, count: int, pace: int = 0) -> subprocess.Popen:
        """Start sending `count` UDP datagrams from the namespace to host_ip:port."""
        return subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                self.ns,
                sys.executable,
                str(SENDER),
                self.host_ip,
                str(port),
                str(count),
                str(pace),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def send_udp_wait(self, port: int, count: int) -> int:
        p = self.send_udp(port, count)
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        return int(out)


CANDIDATE_PREFIXES = ["198.51.100", "203.0.113", "198.18.213", "198.19.213"]


def free_prefix() -> str:
    used = sh("ip", "-4", "addr") + sh("ip", "-4", "route", "show", "table", "all")
    for prefix in CANDIDATE_PREFIXES:
        if prefix + "." not in used:
            return prefix
    raise AssertionError("no free test subnet: every candidate is in use on this machine")


@contextlib.contextmanager
def net_pair() -> Iterator[NetPair]:
    tag = uuid.uuid4().hex[:6]
    prefix = free_prefix()
    net = NetPair(f"bgt-{tag}", f"bgh{tag}", f"bgp{tag}", f"{prefix}.1", f"{prefix}.2")
    sh("ip", "netns", "add", net.ns)
    try:
        sh(
            "ip",
            "link",
            "add",
            net.host_if,
            "type",
            "veth",
            "peer",
            "name",
            net.peer_if,
            "netns",
            net.ns,
        )
        for cmd in (
            ["sysctl", "-qw", f"net.ipv6.conf.{net.host_if}.disable_ipv6=1"],
            ["ip", "addr", "add", f"{net.host_ip}/24", "dev", net.host_if],
            ["ip", "link", "set", net.host_if, "up"],
        ):
            sh(*cmd)
        inside = ["ip", "netns", "exec", net.ns]
        for cmd in (
            ["sysctl", "-qw", f"net.ipv6.conf.{net.peer_if}.disable_ipv6=1"],
            ["ip", "addr", "add", f"{net.peer_ip}/24", "dev", net.peer_if],
            ["ip", "link", "set", net.peer_if, "up"],
            ["ip", "link", "set", "lo", "up"],
        ):
            sh(*inside, *cmd)
        host_mac = sh("cat", f"/sys/class/net/{net.host_if}/address").strip()
        peer_mac = sh(*inside, "cat", f"/sys/class/net/{net.peer_if}/address").strip()
        sh(
            "ip",
            "neigh",
            "replace",
            net.peer_ip,
            "lladdr",
            peer_mac,
            "dev",
            net.host_if,
            "nud",
            "permanent",
        )
        sh(
            *inside,
            "ip",
            "neigh",
            "replace",
            net.host_ip,
            "lladdr",
            host_mac,
            "dev",
            net.peer_if,
            "nud",
            "permanent",
        )
        yield net
    finally:
        subprocess.run(["ip", "link", "del", net.host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", net.ns], capture_output=True)


@contextlib.contextmanager
def node_pair(host_if: str = "bpfg0") -> Iterator[NetPair]:
    """A simulated node: its own namespace holding `host_if`, joined by veth to a peer
    namespace that sends the traffic. Nothing touches the root namespace."""
    tag = uuid.uuid4().hex[:6]
    node_ns, peer_ns = f"bgn-{tag}", f"bgp-{tag}"
    net = NetPair(peer_ns, host_if, "bpfg1", "198.51.100.1", "198.51.100.2", node_ns)
    sh("ip", "netns", "add", node_ns)
    sh("ip", "netns", "add", peer_ns)
    try:
        on_node = ["ip", "netns", "exec", node_ns]
        on_peer = ["ip", "netns", "exec", peer_ns]
        sh(
            *on_node,
            "ip",
            "link",
            "add",
            host_if,
            "type",
            "veth",
            "peer",
            "name",
            net.peer_if,
            "netns",
            peer_ns,
        )
        for side, dev, ip in ((on_node, host_if, net.host_ip), (on_peer, net.peer_if, net.peer_ip)):
            sh(*side, "sysctl", "-qw", f"net.ipv6.conf.{dev}.disable_ipv6=1")
            sh(*side, "ip", "addr", "add", f"{ip}/24", "dev", dev)
            sh(*side, "ip", "link", "set", dev, "up")
            sh(*side, "ip", "link", "set", "lo", "up")
        node_mac = sh(*on_node, "cat", f"/sys/class/net/{host_if}/address").strip()
        peer_mac = sh(*on_peer, "cat", f"/sys/class/net/{net.peer_if}/address").strip()
        sh(
            *on_node,
            "ip",
            "neigh",
            "replace",
            net.peer_ip,
            "lladdr",
            peer_mac,
            "dev",
            host_if,
            "nud",
            "permanent",
        )
        sh(
            *on_peer,
            "ip",
            "neigh",
            "replace",
            net.host_ip,
            "lladdr",
            node_mac,
            "dev",
            net.peer_if,
            "nud",
            "permanent",
        )
        yield net
    finally:
        subprocess.run(["ip", "netns", "del", peer_ns], capture_output=True)
        subprocess.run(["ip", "netns", "del", node_ns], capture_output=True)
