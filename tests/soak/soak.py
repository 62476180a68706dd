#!/usr/bin/env python3
"""soak.py - chaos soak of greygated: nothing is lost, whatever happens.

Runs the built greygated (-d, policy accept) in front of an in-process
"chaos sink" that, message by message, at random accepts (250), accepts
with a 64 KiB multi-line reply or after a slow dot, tempfails (451),
rejects (554, sometimes 64 KiB of it), closes in the middle of its reply,
or hangs past the replay's deadline; it refuses recipients at random
(550 or 452), so that messages are refused whole or in part, and now and
then greets or answers EHLO with 64 KiB.  CLIENTS threads send MESSAGES messages, one session
each, every one with its own Message-ID; meanwhile a chaos thread kill -9s
a random worker now and then and sends SIGHUP to the master.

Invariants checked at the end (exit 1 when one fails):
  - every message the client got 250 for is one the sink accepted, and
    every one the sink accepted got 250, but for those whose client lost
    its connection (client-acknowledged == upstream-received);
  - no message reached the sink twice;
  - no message the client was refused (4xx/5xx) reached the sink;
  - a message the sink accepted whose client lost its connection (a
    worker killed after the upstream's 250) is a possible duplicate:
    counted and listed, never "lost";
  - the master survived, still serves, and after SESSIONS more plain
    sessions its open file descriptors and its workers' RSS have not grown.

Loopback only; bounded in count and in time (a deadline on every wait).

  soak.py --greygated PATH [--messages N] [--clients C] [--sessions S]
"""
import argparse
import os
import random
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                ".."))
from free_ports import free_ports  # noqa: E402

UPSTREAM_TIMEOUT = 2
REPLAY_TIMEOUT = 3


def huge(code, last):
    """A reply of about 64 KiB: 650 lines of 100 octets, then last."""
    body = b"".join(b"%d-chaos huge line %04d %s\r\n" % (code, i, b"y" * 76)
                    for i in range(650))
    return body + b"%d %s\r\n" % (code, last)


class ChaosSink:
    """An SMTP server on 127.0.0.1 whose reply to each final dot is random."""

    OUTCOMES = [("accept", 45), ("huge", 10), ("slow", 8), ("tempfail", 8),
                ("reject", 7), ("huge-reject", 5), ("cut", 8), ("hang", 9)]

    def __init__(self, port):
        self.lock = threading.Lock()
        self.accepted = set()      # Message-IDs answered with a whole 250
        self.times = {}            # Message-ID -> times accepted
        self.outcomes = {}         # outcome -> count
        self.stop = threading.Event()
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", port))
        self.ls.listen(256)
        self.ls.settimeout(0.5)
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def pick(self):
        r = random.randrange(100)
        for name, weight in self.OUTCOMES:
            if r < weight:
                return name
            r -= weight
        return "accept"

    def serve(self):
        while not self.stop.is_set():
            try:
                c, _ = self.ls.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self.session, args=(c,),
                             daemon=True).start()

    def session(self, c):
        c.settimeout(30)
        f = c.makefile("rb")
        try:
            if random.randrange(20) == 0:
                c.sendall(huge(220, b"chaos.test ESMTP chaos"))
            else:
                c.sendall(b"220 chaos.test ESMTP chaos\r\n")
            while True:
                line = f.readline(4096)
                if not line:
                    return
                verb = line[:4].upper()
                if verb == b"EHLO":
                    if random.randrange(20) == 0:
                        c.sendall(huge(250, b"8BITMIME"))
                    else:
                        c.sendall(b"250-chaos.test\r\n250-PIPELINING\r\n"
                                  b"250 8BITMIME\r\n")
                elif verb == b"HELO":
                    c.sendall(b"250 chaos.test\r\n")
                elif verb == b"RCPT":
                    r = random.randrange(100)
                    if r < 6:
                        c.sendall(b"550 5.1.1 chaos: no such user\r\n")
                    elif r < 9:
                        c.sendall(b"452 4.2.2 chaos: mailbox full\r\n")
                    elif r < 11:
                        c.sendall(huge(550, b"5.1.1 chaos: no such user"))
                    else:
                        c.sendall(b"250 2.1.5 Ok\r\n")
                elif verb in (b"MAIL", b"RSET", b"NOOP"):
                    c.sendall(b"250 2.0.0 Ok\r\n")
                elif verb == b"DATA":
                    c.sendall(b"354 go ahead\r\n")
                    if not self.message(c, f):
                        return
                elif verb == b"QUIT":
                    c.sendall(b"221 2.0.0 Bye\r\n")
                    return
                else:
                    c.sendall(b"502 5.5.2 what\r\n")
        except OSError:
            return
        finally:
            try:
                c.close()
            except OSError:
                pass

    def message(self, c, f):
        """Read one message; answer at random; False: connection over."""
        mid = None
        while True:
            line = f.readline(65536)
            if not line:
                return False
            if line == b".\r\n":
                break
            if mid is None and line.lower().startswith(b"message-id:"):
                mid = line.split(b":", 1)[1].strip().decode("ascii",
                                                           "replace")
        what = self.pick()
        with self.lock:
            self.outcomes[what] = self.outcomes.get(what, 0) + 1
        if what == "slow":
            # a slow dot, answered within the replay's deadline
            if self.stop.wait(random.uniform(0.3, 1.2)):
                return False
        if what in ("accept", "huge", "slow"):
            # recorded before the 250 leaves: a 250 is always on record
            with self.lock:
                self.accepted.add(mid)
                self.times[mid] = self.times.get(mid, 0) + 1
            c.sendall(huge(250, b"2.0.0 Ok: queued") if what == "huge"
                      else b"250 2.0.0 Ok: queued\r\n")
            return True
        if what == "huge-reject":
            c.sendall(huge(554, b"5.7.1 chaos reject"))
            return True
        if what == "tempfail":
            c.sendall(b"451 4.3.0 chaos tempfail\r\n")
            return True
        if what == "reject":
            c.sendall(b"554 5.7.1 chaos reject\r\n")
            return True
        if what == "cut":
            c.sendall(b"25")             # half a reply, then gone
            return False
        # hang: past greygated's replay deadline, then gone
        self.stop.wait(REPLAY_TIMEOUT + 1.5)
        return False


def send_one(port, mid, results, lock):
    """One session, one message; its outcome in results[mid]."""
    # recipients of their own: a remembered refusal concerns one message
    tag = mid.strip("<>").split("@")[0]
    r1, r2 = "r-%s@example.org" % tag, "o-%s@example.org" % tag
    body = ("From: soak@example.com\r\nTo: %s, %s\r\n" % (r1, r2) +
            "Message-ID: %s\r\nSubject: soak\r\n\r\n" % mid +
            ("x" * 70 + "\r\n") * 14)
    try:
        s = smtplib.SMTP("127.0.0.1", port, timeout=30)
        try:
            s.ehlo("soak.client.test")
            code, _ = s.mail("soak@example.com")
            if code != 250:
                what = "refused"
            else:
                code, _ = s.rcpt(r1)
                if code == 250:
                    code, _ = s.rcpt(r2)
                if code != 250:
                    what = "refused"
                else:
                    code, _ = s.data(body)
                    what = "250" if code == 250 else "refused"
            try:
                s.quit()
            except (smtplib.SMTPException, OSError):
                pass
        finally:
            s.close()
    except smtplib.SMTPResponseException as e:
        what = "refused" if e.smtp_code >= 400 else "cut"
    except (smtplib.SMTPException, OSError):
        what = "cut"
    with lock:
        results[mid] = what


def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode("ascii", "replace")
    except OSError:
        return ""


def workers(master):
    return [p for p in children(master) if "policy" not in cmdline(p)]


def established(ports):
    """TCP connections in ESTABLISHED or CLOSE_WAIT with an end on one
    of ports (/proc/net/tcp and tcp6)"""
    want = {"%04X" % p for p in ports}
    n = 0
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                rows = f.readlines()[1:]
        except OSError:
            continue
        for row in rows:
            fld = row.split()
            if fld[3] not in ("01", "08"):
                continue
            if (fld[1].rsplit(":", 1)[1] in want or
                    fld[2].rsplit(":", 1)[1] in want):
                n += 1
    return n


def wait_quiet(ports, secs):
    """until no connection is open on ports; False after secs"""
    end = time.monotonic() + secs
    while established(ports):
        if time.monotonic() > end:
            return False
        time.sleep(0.1)
    return True


def nfds(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return -1


def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def chaos(master, stop, counts):
    """kill -9 a random worker every ~0.7 s, SIGHUP every ~4 s."""
    next_hup = time.monotonic() + 2
    while not stop.wait(random.uniform(0.4, 1.0)):
        ws = workers(master)
        if ws:
            try:
                os.kill(random.choice(ws), signal.SIGKILL)
                counts["killed"] += 1
            except OSError:
                pass
        if time.monotonic() >= next_hup:
            os.kill(master, signal.SIGHUP)
            counts["sighup"] += 1
            next_hup = time.monotonic() + random.uniform(3, 5)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--greygated", required=True)
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--sessions", type=int, default=10000)
    ap.add_argument("--deadline", type=float, default=600)
    a = ap.parse_args()
    deadline = time.monotonic() + a.deadline

    tmp = tempfile.mkdtemp(prefix="greygate-soak.")
    os.chmod(tmp, 0o755)
    port, sink_port = free_ports(2)
    os.mkdir(os.path.join(tmp, "spool"))
    os.chmod(os.path.join(tmp, "spool"), 0o777)
    os.mkdir(os.path.join(tmp, "db"))
    os.chmod(os.path.join(tmp, "db"), 0o777)
    conf = os.path.join(tmp, "greygate.conf")
    with open(conf, "w") as f:
        f.write("""servername = "soak.test"
listen = {"127.0.0.1"}
port = %d
smtp_ip = "127.0.0.1"
smtp_port = %d
pidfile = "%s/greygated.pid"
spool_dir = "%s/spool"
policy = "accept"
upstream_connect_timeout = 3
upstream_timeout = %d
replay_timeout = %d
inactivity_timeout = 30
shutdown_timeout = 5
start_workers = 10
min_spare_workers = 5
max_spare_workers = 20
max_workers = 60
max_connections_per_ip = 0
greylist { store = "sqlite:%s/db/greylist.db" }
""" % (port, sink_port, tmp, tmp, UPSTREAM_TIMEOUT, REPLAY_TIMEOUT, tmp))
    sink = ChaosSink(sink_port)
    log = open(os.path.join(tmp, "daemon.log"), "w")
    d = subprocess.Popen([a.greygated, "-d", "-f", conf], stdout=log,
                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    failures = []
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise SystemExit("soak: greygated does not listen")

        # -- 1. the chaos phase ---------------------------------------------
        results, lock = {}, threading.Lock()
        ids = ["<soak-%d-%06d@soak.test>" % (os.getpid(), i)
               for i in range(a.messages)]
        todo = list(ids)
        tlock = threading.Lock()

        def client():
            while time.monotonic() < deadline:
                with tlock:
                    if not todo:
                        return
                    mid = todo.pop()
                send_one(port, mid, results, lock)

        stop = threading.Event()
        counts = {"killed": 0, "sighup": 0}
        ch = threading.Thread(target=chaos, args=(d.pid, stop, counts),
                              daemon=True)
        t0 = time.monotonic()
        ch.start()
        ts = [threading.Thread(target=client) for _ in range(a.clients)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(max(1, deadline - time.monotonic()))
        stop.set()
        ch.join(5)
        took = time.monotonic() - t0
        sink.stop.set()         # let the hung sessions go

        got250 = {m for m, w in results.items() if w == "250"}
        refused = {m for m, w in results.items() if w == "refused"}
        cut = {m for m, w in results.items() if w == "cut"}
        with sink.lock:
            accepted = set(sink.accepted)
            twice = sorted(m for m, n in sink.times.items() if n > 1)
        lost = got250 - accepted
        wrongly = refused & accepted
        dups = cut & accepted
        unacked = accepted - got250 - cut
        print("soak: %d messages, %d clients, %.1f s; %d workers killed, "
              "%d SIGHUP" % (len(results), a.clients, took,
                              counts["killed"], counts["sighup"]))
        print("soak: sink outcomes %s" % dict(sorted(sink.outcomes.items())))
        print("soak: client 250=%d refused=%d cut=%d; delivered=%d "
              "possible-duplicates=%d lost=%d delivered-but-refused=%d" %
              (len(got250), len(refused), len(cut), len(accepted),
               len(dups), len(lost), len(wrongly)))
        for m in sorted(dups):
            print("soak: possible duplicate (accepted upstream, client "
                  "cut): %s" % m)
        if len(results) != a.messages:
            failures.append("only %d of %d messages were tried by the "
                            "deadline" % (len(results), a.messages))
        if lost:
            failures.append("lost (250 to the client, not at the sink): "
                            "%s" % sorted(lost)[:10])
        if wrongly:
            failures.append("refused to the client but delivered: %s" %
                            sorted(wrongly)[:10])
        if unacked:
            failures.append("delivered, the client not told 250: %s" %
                            sorted(unacked)[:10])
        if twice:
            failures.append("delivered twice: %s" % twice[:10])
        if counts["killed"] == 0 or counts["sighup"] == 0:
            failures.append("the chaos did not happen: %s" % counts)
        if d.poll() is not None:
            failures.append("the master died (status %s)" % d.returncode)

        # -- 2. leaks: descriptors and RSS over many plain sessions ---------
        if not failures:
            # the hung ones end: every session of the chaos phase
            # closed, at greygated and at the sink
            if not wait_quiet((port, sink_port), 60):
                failures.append("%d connections of the chaos phase still "
                                "open after 60 s" %
                                established((port, sink_port)))
            sink.stop.clear()
            sink.OUTCOMES = [("accept", 100)]

            served = []

            def quick(n):
                ok = 0
                for _ in range(n):
                    try:
                        s = socket.create_connection(("127.0.0.1", port),
                                                     10)
                        s.settimeout(10)
                        f = s.makefile("rb")
                        if f.readline().startswith(b"220 "):
                            s.sendall(b"QUIT\r\n")
                            if f.readline().startswith(b"221 "):
                                ok += 1
                        s.close()
                    except OSError:
                        pass
                with lock:
                    served.append(ok)

            def phase(n):
                per = n // a.clients
                ts = [threading.Thread(target=quick, args=(per,))
                      for _ in range(a.clients)]
                for t in ts:
                    t.start()
                for t in ts:
                    t.join(max(1, deadline - time.monotonic()))

            phase(a.clients * 50)       # warm: every worker has served
            fd0 = nfds(d.pid)
            ws = workers(d.pid)
            rss0 = max(rss_kb(p) for p in ws) if ws else 0
            t1 = time.monotonic()
            del served[:]
            phase(a.sessions)
            took = time.monotonic() - t1
            if sum(served) != a.sessions // a.clients * a.clients:
                failures.append("%d of %d plain sessions were served" %
                                (sum(served), a.sessions))
            fd1 = nfds(d.pid)
            ws = workers(d.pid)
            rss1 = max(rss_kb(p) for p in ws) if ws else 0
            print("soak: %d sessions (%d served) in %.1f s; master fds "
                  "%d -> %d; largest worker RSS %d -> %d kB" %
                  (a.sessions, sum(served), took, fd0, fd1, rss0, rss1))
            if fd1 > fd0:
                failures.append("the master's descriptors grew: %d -> %d" %
                                (fd0, fd1))
            if rss1 > rss0 + 512:
                failures.append("worker RSS grew: %d -> %d kB" % (rss0, rss1))
            if d.poll() is not None:
                failures.append("the master died (status %s)" % d.returncode)
    finally:
        sink.stop.set()
        if d.poll() is None:
            d.send_signal(signal.SIGTERM)
            try:
                d.wait(15)
            except subprocess.TimeoutExpired:
                d.kill()
                d.wait()
        log.close()
    if failures:
        for f in failures:
            print("soak: FAIL: %s" % f)
        with open(os.path.join(tmp, "daemon.log")) as f:
            tail = f.readlines()[-40:]
        print("soak: last lines of the daemon log:")
        sys.stdout.write("".join("  " + x for x in tail))
        return 1
    print("soak: PASS (lost = 0)")
    subprocess.call(["rm", "-rf", tmp])
    return 0


if __name__ == "__main__":
    sys.exit(main())
