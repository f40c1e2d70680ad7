#!/usr/bin/env python3
"""Print N (default 1) distinct free TCP ports on 127.0.0.1, one per line.

For shell-driven tests and benchmarks that start envoy/nginx/redis on
throwaway ports, e.g.  read -r LISTEN ADMIN < <(scripts/free-port.py 2 | xargs)
The kernel picks each port; all sockets stay open until every port is
chosen so the N ports differ. (A port can still be taken between this
exiting and the server binding it; callers should retry on bind failure.)
"""
import socket
import sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 1
socks = []
for _ in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print("\n".join(str(s.getsockname()[1]) for s in socks))
