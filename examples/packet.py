"""Write a minimal Ethernet/IPv4/UDP (or ICMP) frame, for `bpftool prog run ... data_in`.

    python examples/packet.py udp 53 > pkt.bin
"""

from __future__ import annotations

import struct
import sys


def frame(proto: str, dport: int = 0) -> bytes:
    eth = bytes(6) + bytes.fromhex("020000000001") + struct.pack("!H", 0x0800)
    if proto == "udp":
        l4, num = struct.pack("!HHHH", 40000, dport, 8 + 4, 0) + b"ping", 17
    else:
        l4, num = struct.pack("!BBHHH", 8, 0, 0, 1, 1) + b"ping", 1
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 1, 0, 64, num, 0,
                     bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
    return eth + ip + l4


if __name__ == "__main__":
    kind = sys.argv[1] if len(sys.argv) > 1 else "udp"
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 9999
    sys.stdout.buffer.write(frame(kind, port))
