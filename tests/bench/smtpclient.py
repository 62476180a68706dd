#!/usr/bin/env python3
"""Small SMTP clients for tests/bench/bench.sh.  Loopback only, bounded.

  smtpclient.py latency HOST PORT --n N [--warmup W] [--size B] --out FILE
      N sequential messages, one SMTP connection each (connect, EHLO, MAIL,
      RCPT, DATA, QUIT), each timed from before connect() to the QUIT reply;
      appends one latency in ms per line to FILE.
  smtpclient.py stats FILE [REF_FILE]
      n, median, p90, p99, max of FILE (nearest rank), and the overhead of
      its median and p99 over those of REF_FILE.
  smtpclient.py slow HOST PORT --n N [--hold S] [--deadline S]
      opens N connections at once; each waits for the greeting, sends EHLO,
      reads the reply and holds the connection for S seconds.  Prints how
      many got 220 and 250 and how long until the last of them did.
  smtpclient.py tls HOST PORT --n N --conc C [--size B] [--deadline S]
      N messages over STARTTLS, one session and so one handshake each
      (EHLO, STARTTLS, EHLO, MAIL, RCPT, DATA, QUIT), from C processes at
      once; certificates are not verified.  Prints the sessions that got
      250 to the dot, the failures and the wall time.
"""
import argparse
import math
import smtplib
import socket
import statistics
import sys
import time

LOOPBACK = ("127.", "localhost")


def pct(vals, p):
    k = max(1, math.ceil(p / 100.0 * len(vals)))
    return vals[k - 1]


def body(size):
    line = b"X" * 78 + b"\r\n"
    head = b"From: <bench@bench.example>\r\nTo: <sink@bench.example>\r\n" \
        b"Subject: latency\r\n\r\n"
    return head + (line * (size // len(line) + 1))[:size]


def latency(a):
    msg = body(a.size)
    vals = []
    end = time.monotonic() + a.deadline
    for i in range(a.warmup + a.n):
        if time.monotonic() > end:
            print("latency: deadline reached", file=sys.stderr)
            return 1
        t0 = time.perf_counter()
        s = smtplib.SMTP(a.host, a.port, local_hostname="bench.example",
                         timeout=10)
        s.ehlo("bench.example")
        code, _ = s.mail("bench@bench.example")
        if code != 250:
            print("latency: MAIL got %d" % code, file=sys.stderr)
            return 1
        code, _ = s.rcpt("sink@bench.example")
        if code != 250:
            print("latency: RCPT got %d" % code, file=sys.stderr)
            return 1
        code, _ = s.data(msg)
        if code != 250:
            print("latency: data got %d" % code, file=sys.stderr)
            return 1
        s.quit()
        t1 = time.perf_counter()
        if i >= a.warmup:
            vals.append((t1 - t0) * 1000.0)
    with open(a.out, "a") as f:
        for v in vals:
            f.write("%.4f\n" % v)
    return 0


def load(path):
    with open(path) as f:
        return sorted(float(x) for x in f if x.strip())


def stats(a):
    v = load(a.file)
    if not v:
        print("n=0")
        return 1
    out = "n=%d median_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f" % (
        len(v), statistics.median(v), pct(v, 90), pct(v, 99), v[-1])
    if a.ref:
        r = load(a.ref)
        out += " median_overhead_ms=%+.3f p99_overhead_ms=%+.3f" % (
            statistics.median(v) - statistics.median(r), pct(v, 99) - pct(r, 99))
    print(out)
    return 0


def readreply(f):
    code = None
    while True:
        line = f.readline()
        if not line:
            return None
        code = line[:3]
        if line[3:4] != b"-":
            return code


def slow(a):
    t0 = time.monotonic()
    socks = []
    for _ in range(a.n):
        s = socket.create_connection((a.host, a.port), timeout=a.deadline)
        socks.append(s)
    files = [s.makefile("rb") for s in socks]
    got220 = got250 = 0
    last = 0.0
    # greetings arrive in any order; a blocking read per socket in turn is
    # enough: the total wait is bounded by the deadline
    for s, f in zip(socks, files):
        left = a.deadline - (time.monotonic() - t0)
        if left <= 0:
            break
        s.settimeout(left)
        try:
            if readreply(f) != b"220":
                continue
            got220 += 1
            s.sendall(b"EHLO bench.example\r\n")
            if readreply(f) == b"250":
                got250 += 1
                last = time.monotonic() - t0
        except OSError:
            continue
    print("connections=%d greeted=%d ehlo_ok=%d all_within_s=%.3f"
          % (a.n, got220, got250, last))
    sys.stdout.flush()
    time.sleep(a.hold)
    for s in socks:
        try:
            s.sendall(b"QUIT\r\n")
        except OSError:
            pass
        s.close()
    return 0 if got250 == a.n else 1


def tls_worker(args):
    host, port, n, size, deadline = args
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    msg = body(size)
    ok = bad = 0
    end = time.monotonic() + deadline
    for _ in range(n):
        if time.monotonic() > end:
            bad += 1
            continue
        try:
            s = smtplib.SMTP(host, port, local_hostname="bench.example",
                             timeout=30)
            s.starttls(context=ctx)
            s.ehlo("bench.example")
            s.mail("bench.tls@bench.example")
            s.rcpt("sink@bench.example")
            code, _ = s.data(msg)
            s.quit()
            if code == 250:
                ok += 1
            else:
                bad += 1
        except (OSError, smtplib.SMTPException):
            bad += 1
    return ok, bad


def tls(a):
    from multiprocessing import Pool
    per = [a.n // a.conc + (1 if i < a.n % a.conc else 0)
           for i in range(a.conc)]
    t0 = time.monotonic()
    with Pool(a.conc) as pool:
        res = pool.map(tls_worker, [(a.host, a.port, k, a.size, a.deadline)
                                    for k in per if k > 0])
    w = time.monotonic() - t0
    ok = sum(r[0] for r in res)
    bad = sum(r[1] for r in res)
    print("sessions=%d delivered=%d failed=%d wall_s=%.3f" % (a.n, ok, bad, w))
    return 0 if bad == 0 else 1


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("latency")
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--n", type=int, default=500)
    p.add_argument("--warmup", type=int, default=0)
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--deadline", type=float, default=120)
    p.add_argument("--out", required=True)
    p = sub.add_parser("stats")
    p.add_argument("file")
    p.add_argument("ref", nargs="?")
    p = sub.add_parser("slow")
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--hold", type=float, default=2)
    p.add_argument("--deadline", type=float, default=60)
    p = sub.add_parser("tls")
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--conc", type=int, default=10)
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--deadline", type=float, default=120)
    a = ap.parse_args()
    if getattr(a, "host", "127.0.0.1").startswith(LOOPBACK) is False:
        print("smtpclient.py: loopback only", file=sys.stderr)
        return 2
    return {"latency": latency, "stats": stats, "slow": slow,
            "tls": tls}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
