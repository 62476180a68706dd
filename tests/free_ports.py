#!/usr/bin/env python3
"""free_ports.py N - print N distinct TCP ports free on 127.0.0.1 now.

They are taken below the ephemeral range, which any outgoing connection
may use between now and the moment a test binds the port again.  Used
by the bats tests, the benchmark and the soak (import free_ports)."""
import random
import socket
import sys


def free_ports(n):
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        lo = 32768
    lo = max(lo, 12000)
    socks, ports = [], []
    while len(socks) < n:
        p = random.randrange(10000, lo)
        if p in ports:
            continue
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", p))
        except OSError:
            s.close()
            continue
        socks.append(s)
        ports.append(p)
    for s in socks:
        s.close()
    return ports


if __name__ == "__main__":
    print(" ".join(str(p) for p in free_ports(int(sys.argv[1]))))
