"""Send COUNT UDP datagrams to HOST:PORT, pausing briefly every PACE packets; print COUNT.

Run inside a network namespace: `ip netns exec NS python examples/udp_send.py HOST PORT COUNT`.
"""

import socket
import sys
import time

host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
pace = int(sys.argv[4]) if len(sys.argv) > 4 else 0
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
payload = b"x" * 18
sent = 0
for i in range(count):
    while True:
        try:
            s.sendto(payload, (host, port))
            break
        except BlockingIOError:  # pragma: no cover - socket buffer full: retry
            time.sleep(0.0001)
    sent += 1
    if pace and i % pace == pace - 1:
        time.sleep(0.0002)
print(sent)
