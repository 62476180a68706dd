#!/usr/bin/env python3
"""sink.py - a small recording SMTP server used as greygate's upstream in tests.

It listens on 127.0.0.1:PORT and records everything it is told in DIR:

  DIR/ready        written once the socket listens
  DIR/transcript   every command line received, verbatim without its CRLF,
                   one a line; "# ..." lines mark connections, data and
                   protocol violations ("# VIOLATION: ...")
  DIR/NNNN.msg     for each accepted message, the exact bytes received
                   between the 354 and the terminating CRLF.CRLF: still
                   dot-stuffed, the final ".\\r\\n" excluded, the CRLF before it
                   included
  DIR/NNNN.env     the envelope of that message, verbatim: the EHLO/HELO
                   lines received since the previous message of the session
                   (or the last one used), the MAIL line and the RCPT lines
  DIR/NNNN.rejected  for a message that reached the data phase but was not
                   accepted (rejected, tempfailed, closed, hung): the reason
                   and the envelope.  No .msg is written for it.

Modes (--mode, repeatable or comma-separated):
  accept            default: 250 to everything; EHLO announces PIPELINING,
                    SIZE, 8BITMIME, ENHANCEDSTATUSCODES
  no-pipelining     do not announce PIPELINING; a client that sends before
                    it has its reply gets 503 5.5.0 and is disconnected
  reject-ehlo       500 to EHLO (HELO works)
  reject-mail       550 5.7.1 to MAIL
  reject-rcpt=ADDR  550 5.1.1 <ADDR>: User unknown for that recipient
  reject-all-rcpt   550 5.1.1 <ADDR>: User unknown for every recipient
  reject-datacmd    554 to DATA
  tempfail-data     451 4.3.0 at the final dot
  reject-data       554 5.7.1 at the final dot
  close-after-mail  close the connection on MAIL, without a reply
  close-at-dot      close the connection at the final dot, without a reply
  hang-at-dot       never answer the final dot, keep the connection open
  drip-at-dot       answer the final dot one octet every 0.4 s, in 16 s
  banner-fail       554 greeting
  multiline         every reply is multi-line
  huge              every reply is about 64 KiB: 650 lines of 100 octets
                    before its own final line
  tempfail-rcpt=ADDR  452 4.2.2 <ADDR>: Mailbox full for that recipient
  hangup-after-refusals=N  after the Nth refused RCPT, 421 and close
                    (Postfix's smtpd_hard_error_limit)
  slow-data=S       wait S seconds before the 354 to DATA
  slow-dot=S        wait S seconds before answering the final dot
  slow-quit=S       wait S seconds before the 221 to QUIT

Bytes after DATA before the 354 are a pipelining violation in every mode.
Standard library only; one thread per connection; SIGTERM exits 0.
"""

import argparse
import os
import select
import signal
import socket
import sys
import threading

HOST = "127.0.0.1"
NAME = "sink.test"
SIZE = 209715200

TEMPFAIL_RCPT = set()
NUMBERS = {}
lock = threading.Lock()
counter = [0]
stopping = threading.Event()


NUMERIC = ("hangup-after-refusals", "slow-data", "slow-dot", "slow-quit")


def parse_modes(values):
    modes = set()
    reject_rcpt = set()
    for v in values or []:
        for m in v.split(","):
            m = m.strip()
            if not m:
                continue
            if m.startswith("reject-rcpt="):
                reject_rcpt.add(m.split("=", 1)[1].lower())
                continue
            if m.startswith("tempfail-rcpt="):
                TEMPFAIL_RCPT.add(m.split("=", 1)[1].lower())
                continue
            k, _, val = m.partition("=")
            if k in NUMERIC and val:
                NUMBERS[k] = float(val)
                continue
            if m not in (
                "accept",
                "no-pipelining",
                "reject-ehlo",
                "reject-mail",
                "reject-all-rcpt",
                "reject-datacmd",
                "tempfail-data",
                "reject-data",
                "close-after-mail",
                "close-at-dot",
                "hang-at-dot",
                "drip-at-dot",
                "banner-fail",
                "multiline",
                "huge",
            ):
                raise SystemExit("sink.py: unknown mode %r" % m)
            modes.add(m)
    return modes, reject_rcpt


class Closed(Exception):
    """The peer went away (or we decided to drop it)."""


class Session:
    def __init__(self, sock, peer, opts):
        self.sock = sock
        self.peer = peer
        self.dir = opts.dir
        self.modes = opts.modes
        self.reject_rcpt = opts.reject_rcpt
        self.buf = bytearray()
        self.greetings = []  # EHLO/HELO lines since the last message
        self.fresh = True  # False once a message has used self.greetings
        self.refusals = 0  # RCPTs refused in this connection
        self.reset()

    # -- recording ----------------------------------------------------
    def record(self, line):
        with lock:
            with open(os.path.join(self.dir, "transcript"), "ab") as f:
                f.write(bytes(line) + b"\n")

    def note(self, text):
        self.record(("# " + text).encode())

    def greeting(self, line):
        if not self.fresh:
            self.greetings = []
            self.fresh = True
        self.greetings.append(line)

    def envelope(self):
        return b"".join(bytes(l) + b"\n" for l in self.greetings + self.env)

    def next_number(self):
        with lock:
            counter[0] += 1
            return counter[0]

    def write_file(self, name, data):
        path = os.path.join(self.dir, name)
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, path)

    # -- I/O ----------------------------------------------------------
    def send(self, code, text):
        """Send one reply, made multi-line in multiline mode."""
        if isinstance(text, str):
            text = [text]
        lines = list(text)
        if "multiline" in self.modes and len(lines) == 1:
            first = lines[0].split(" ", 1)[0]
            enh = first + " " if first[:1].isdigit() and "." in first else ""
            lines = [lines[0], enh + NAME + " multiline end"]
        if "huge" in self.modes:
            filler = ["%s huge reply line %04d %s" % (NAME, k, "x" * 64) for k in range(650)]
            lines = lines[:-1] + filler + lines[-1:]
        out = []
        for i, l in enumerate(lines):
            sep = " " if i == len(lines) - 1 else "-"
            out.append(("%d%s%s\r\n" % (code, sep, l)).encode("latin-1"))
        try:
            self.sock.sendall(b"".join(out))
        except OSError:
            raise Closed()

    def fill(self):
        try:
            data = self.sock.recv(65536)
        except OSError:
            data = b""
        if not data:
            raise Closed()
        self.buf += data

    def readline(self):
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[: i + 1])
                del self.buf[: i + 1]
                return line
            self.fill()

    def pending(self, wait):
        """True when the client has sent bytes we have not answered yet."""
        if self.buf:
            return True
        try:
            r, _, _ = select.select([self.sock], [], [], wait)
            if not r:
                return False
            return len(self.sock.recv(1, socket.MSG_PEEK)) > 0
        except OSError:
            return False

    def read_data(self):
        """Read up to CRLF.CRLF; return the message (see module doc)."""
        data = self.buf
        self.buf = bytearray()
        pos = 0
        while True:
            if data[:3] == b".\r\n":
                self.buf = data[3:]
                return bytearray()
            j = data.find(b"\r\n.\r\n", max(0, pos - 4))
            if j >= 0:
                self.buf = data[j + 5 :]
                del data[j + 2 :]
                return data
            pos = len(data)
            try:
                chunk = self.sock.recv(1 << 20)
            except OSError:
                chunk = b""
            if not chunk:
                raise Closed()
            data += chunk

    # -- state --------------------------------------------------------
    def reset(self):
        self.mail = False
        self.env = []
        self.rcpts = 0

    def violation(self, what):
        self.note("VIOLATION: " + what)
        self.send(503, "5.5.0 Improper use of pipelining (%s)" % what)
        raise Closed()

    def run(self):
        self.note("connect from %s:%d" % self.peer)
        try:
            if "banner-fail" in self.modes:
                self.send(554, "5.3.2 %s service unavailable" % NAME)
            else:
                self.send(220, "%s ESMTP sink" % NAME)
            while True:
                self.command(self.readline())
        except Closed:
            pass
        finally:
            try:
                self.sock.close()
            except OSError:
                pass
            self.note("close")

    def command(self, raw):
        line = raw[:-2] if raw.endswith(b"\r\n") else raw[:-1]
        self.record(line)
        if not raw.endswith(b"\r\n") or b"\r" in line:
            self.note("VIOLATION: bare CR or LF in command")
            self.send(500, "5.5.2 Bad line ending")
            raise Closed()
        if "no-pipelining" in self.modes and self.pending(0.02):
            self.violation("command sent before the previous reply")
        text = line.decode("latin-1")
        verb = text.split(" ", 1)[0].upper()
        arg = text[len(verb) :].strip()

        if "banner-fail" in self.modes and verb != "QUIT":
            self.send(503, "5.5.1 Error: service unavailable")
            return
        if verb == "EHLO":
            self.greeting(line)
            self.reset()
            if "reject-ehlo" in self.modes:
                self.send(500, "5.5.2 EHLO not supported")
                return
            caps = [NAME]
            if "no-pipelining" not in self.modes:
                caps.append("PIPELINING")
            caps += ["SIZE %d" % SIZE, "8BITMIME", "ENHANCEDSTATUSCODES"]
            self.send(250, caps)
        elif verb == "HELO":
            self.greeting(line)
            self.reset()
            self.send(250, NAME)
        elif verb == "MAIL":
            if not self.greetings:
                self.send(503, "5.5.1 Error: send HELO/EHLO first")
                return
            if self.mail:
                self.send(503, "5.5.1 Error: nested MAIL command")
                return
            if "close-after-mail" in self.modes:
                self.note("closing after MAIL")
                raise Closed()
            addr = path_of(arg)
            if "reject-mail" in self.modes:
                self.send(550, "5.7.1 <%s>: Sender address rejected: Access denied" % addr)
                return
            self.mail = True
            self.env = [line]
            self.send(250, "2.1.0 Ok")
        elif verb == "RCPT":
            if not self.mail:
                self.send(503, "5.5.1 Error: need MAIL command")
                return
            self.env.append(line)
            addr = path_of(arg)
            limit = NUMBERS.get("hangup-after-refusals")
            if limit is not None and self.refusals >= limit:
                self.note("hanging up after %d refusals" % self.refusals)
                self.send(421, "4.7.0 %s Error: too many errors" % NAME)
                raise Closed()
            if "reject-all-rcpt" in self.modes or addr.lower() in self.reject_rcpt:
                self.refusals += 1
                self.send(550, "5.1.1 <%s>: User unknown" % addr)
                return
            if addr.lower() in TEMPFAIL_RCPT:
                self.refusals += 1
                self.send(452, "4.2.2 <%s>: Mailbox full" % addr)
                return
            self.rcpts += 1
            self.send(250, "2.1.5 Ok")
        elif verb == "DATA":
            if self.pending(0.01):
                self.violation("bytes after DATA before the 354")
            if not self.mail:
                self.send(503, "5.5.1 Error: need RCPT command")
                return
            if self.rcpts == 0:
                self.send(554, "5.5.1 Error: no valid recipients")
                return
            if "reject-datacmd" in self.modes:
                self.send(554, "5.5.1 Error: DATA refused by sink")
                return
            if "slow-data" in NUMBERS:
                self.note("slow DATA")
                stopping.wait(NUMBERS["slow-data"])
            self.send(354, "End data with <CR><LF>.<CR><LF>")
            self.data()
        elif verb == "RSET":
            self.reset()
            self.send(250, "2.0.0 Ok")
        elif verb == "NOOP":
            self.send(250, "2.0.0 Ok")
        elif verb == "QUIT":
            if "slow-quit" in NUMBERS:
                self.note("slow QUIT")
                stopping.wait(NUMBERS["slow-quit"])
            self.send(221, "2.0.0 Bye")
            raise Closed()
        else:
            self.send(502, "5.5.2 Error: command not recognized")

    def data(self):
        msg = self.read_data()
        n = self.next_number()
        env = self.envelope()
        self.fresh = False
        self.note("data %d bytes (message %04d)" % (len(msg), n))
        self.reset()
        bare = (
            msg.count(b"\r") != msg.count(b"\r\n")
            or msg.count(b"\n") != msg.count(b"\r\n")
            or b"\x00" in msg
        )
        if bare:
            self.note("VIOLATION: bare CR, bare LF or NUL in data")
        if "no-pipelining" in self.modes and self.pending(0.02):
            self.write_file("%04d.rejected" % n, b"pipelining after the dot\n" + env)
            self.violation("bytes after the final dot before its reply")

        def refuse(why):
            self.write_file("%04d.rejected" % n, why.encode() + b"\n" + env)

        if "close-at-dot" in self.modes:
            refuse("closed at dot")
            raise Closed()
        if "hang-at-dot" in self.modes:
            refuse("hung at dot")
            while not stopping.is_set():
                try:
                    if not self.sock.recv(65536):
                        break
                except OSError:
                    break
            raise Closed()
        if "drip-at-dot" in self.modes:
            # a reply that never ends in time: the reply's deadline must
            # hold across reads, not restart with each one
            refuse("dripped at dot")
            for c in b"250-2.0.0 Ok: dripping\r\n250 2.0.0 Ok: too late\r\n":
                if stopping.wait(0.4):
                    break
                try:
                    self.sock.sendall(bytes([c]))
                except OSError:
                    break
            raise Closed()
        if "slow-dot" in NUMBERS:
            self.note("slow dot")
            stopping.wait(NUMBERS["slow-dot"])
        if "tempfail-data" in self.modes:
            refuse("tempfailed")
            self.send(451, "4.3.0 Error: queue file write error")
            return
        if "reject-data" in self.modes:
            refuse("rejected")
            self.send(554, "5.7.1 Error: message content rejected")
            return
        self.write_file("%04d.env" % n, env)
        self.write_file("%04d.msg" % n, bytes(msg))
        self.send(250, "2.0.0 Ok: queued as %04d" % n)


def path_of(arg):
    """The address between the angle brackets of "FROM:<x> ..." / "TO:<x>"."""
    a = arg.find("<")
    b = arg.find(">", a + 1)
    if a < 0 or b < 0:
        return arg.split(":", 1)[-1].strip()
    return arg[a + 1 : b]


def main():
    ap = argparse.ArgumentParser(description="recording SMTP sink for tests")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--mode", action="append", default=[])
    opts = ap.parse_args()
    opts.modes, opts.reject_rcpt = parse_modes(opts.mode)
    os.makedirs(opts.dir, exist_ok=True)

    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((HOST, opts.port))
    ls.listen(64)
    ls.settimeout(0.2)

    def on_term(signum, frame):
        stopping.set()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)

    with open(os.path.join(opts.dir, "ready"), "w") as f:
        f.write("%d\n" % os.getpid())

    while not stopping.is_set():
        try:
            sock, peer = ls.accept()
        except socket.timeout:
            continue
        except OSError:
            if stopping.is_set():
                break
            raise
        sock.settimeout(None)
        t = threading.Thread(target=Session(sock, peer, opts).run, daemon=True)
        t.start()
    ls.close()
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
