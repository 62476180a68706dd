#!/usr/bin/env python3
"""tlsclient.py - STARTTLS clients for greygate's TLS tests (standard library).

  tlsclient.py smtplib PORT FROM TO FILE
      Python's smtplib: EHLO, starttls(), EHLO, one message (FILE's bytes,
      CRLF lines, no line starting with a dot); prints the reply to the dot.
  tlsclient.py inject PORT
      EHLO, then "STARTTLS\\r\\nMAIL FROM:<evil@example.com>\\r\\n" in one
      segment, then a handshake if the server lets one start; prints a
      transcript: "S: " plaintext replies, "T: " replies over TLS.
  tlsclient.py garbage PORT
      EHLO, STARTTLS, then 4 KiB of random octets where the ClientHello
      belongs; prints "-- closed" when the server ends the session.
  tlsclient.py hold PORT
      A TLS session that prints the SHA-256 fingerprint of the server's
      certificate ("cert SHA256"), then waits for a line on stdin, then
      sends one message over the same session and prints the reply.
  tlsclient.py fingerprint PORT
      A TLS session: prints the fingerprint and quits.
  tlsclient.py after PORT
      A TLS session, then MAIL before EHLO, EHLO, STARTTLS again, QUIT:
      prints the replies ("T: ").
  tlsclient.py s_client PORT FROM TO FILE
      openssl s_client -starttls smtp -crlf as the client, driven one
      command at a time (it cannot pipeline DATA); prints its replies.

Certificates are not verified: the tests compare fingerprints instead.
Every wait is bounded by TLSCLIENT_TIMEOUT seconds (10).
"""

import hashlib
import os
import smtplib
import socket
import ssl
import sys

TIMEOUT = float(os.environ.get("TLSCLIENT_TIMEOUT", "10"))


def say(s):
    sys.stdout.write(s + "\n")
    sys.stdout.flush()


def context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Conn:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.buf = b""

    def line(self):
        while b"\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError()
            self.buf += data
        i = self.buf.index(b"\r\n")
        line, self.buf = self.buf[:i], self.buf[i + 2 :]
        return line.decode("latin-1")

    def reply(self, tag="S"):
        lines = []
        while True:
            ln = self.line()
            say("%s: %s" % (tag, ln))
            lines.append(ln)
            if ln[3:4] != "-":
                return lines

    def send(self, data):
        self.sock.sendall(data)

    def starttls(self):
        self.sock = context().wrap_socket(self.sock)

    def fingerprint(self):
        der = self.sock.getpeercert(binary_form=True)
        return hashlib.sha256(der).hexdigest()


def do_smtplib(port, sender, rcpt, path):
    with open(path, "rb") as f:
        msg = f.read()
    s = smtplib.SMTP("127.0.0.1", port, local_hostname="client.example", timeout=TIMEOUT)
    s.ehlo()
    code, text = s.starttls(context=context())
    say("starttls: %d %s" % (code, text.decode()))
    s.ehlo()
    say("tls: %s %s" % (s.sock.version(), s.sock.cipher()[0]))
    s.mail(sender)
    s.rcpt(rcpt)
    code, text = s.data(msg)
    say("data: %d %s" % (code, text.decode()))
    s.quit()


def do_inject(port):
    c = Conn(port)
    c.reply()
    c.send(b"EHLO client.example\r\n")
    c.reply()
    c.send(b"STARTTLS\r\nMAIL FROM:<evil@example.com>\r\n")
    say("C: STARTTLS\\r\\nMAIL FROM:<evil@example.com>\\r\\n (one segment)")
    try:
        r = c.reply()
    except (EOFError, OSError):
        say("-- closed")
        return
    if not r[-1].startswith("220"):
        # the server refused: does it still answer anything?
        try:
            c.reply()
        except (EOFError, OSError):
            say("-- closed")
            return
        say("-- still open")
        return
    try:
        c.starttls()
    except (ssl.SSLError, OSError, EOFError) as e:
        say("-- handshake failed: %s" % e.__class__.__name__)
        return
    say("-- TLS on")
    # whatever comes now would be the injected MAIL answered over TLS
    c.sock.settimeout(2)
    try:
        c.reply("T")
    except (socket.timeout, TimeoutError):
        say("-- nothing over TLS")
    except (EOFError, OSError, ssl.SSLError):
        say("-- closed")


def do_garbage(port):
    c = Conn(port)
    c.reply()
    c.send(b"EHLO client.example\r\n")
    c.reply()
    c.send(b"STARTTLS\r\n")
    c.reply()
    c.send(os.urandom(4096))
    try:
        while c.sock.recv(65536):
            pass
        say("-- closed")
    except (socket.timeout, TimeoutError):
        say("-- still open")
    except OSError:
        say("-- closed")


def tls_session(port):
    c = Conn(port)
    c.reply()
    c.send(b"EHLO client.example\r\n")
    c.reply()
    c.send(b"STARTTLS\r\n")
    c.reply()
    c.starttls()
    say("cert %s" % c.fingerprint())
    return c


def do_hold(port):
    c = tls_session(port)
    sys.stdin.readline()
    for cmd in (b"EHLO client.example", b"MAIL FROM:<alice@example.com>",
                b"RCPT TO:<bob@example.org>", b"DATA"):
        c.send(cmd + b"\r\n")
        c.reply("T")
    c.send(b"Subject: held\r\n\r\nsent after the SIGHUP\r\n.\r\n")
    c.reply("T")
    c.send(b"QUIT\r\n")
    c.reply("T")


def do_fingerprint(port):
    c = tls_session(port)
    c.send(b"QUIT\r\n")
    c.reply("T")


def do_after(port):
    c = tls_session(port)
    for cmd in (b"MAIL FROM:<alice@example.com>", b"EHLO client.example",
                b"STARTTLS", b"QUIT"):
        c.send(cmd + b"\r\n")
        c.reply("T")


def do_s_client(port, sender, rcpt, path):
    import subprocess
    import select

    p = subprocess.Popen(
        ["openssl", "s_client", "-starttls", "smtp", "-crlf", "-quiet",
         "-connect", "127.0.0.1:%d" % port],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    buf = b""

    def reply():
        nonlocal buf
        import time
        deadline = time.monotonic() + TIMEOUT
        while True:
            i = buf.find(b"\n")
            if i >= 0:
                ln, buf = buf[:i].rstrip(b"\r"), buf[i + 1 :]
                say("T: " + ln.decode("latin-1"))
                if ln[3:4] != b"-":
                    return ln
                continue
            left = deadline - time.monotonic()
            r, _, _ = select.select([p.stdout], [], [], max(left, 0))
            if not r:
                say("-- timeout")
                raise SystemExit(1)
            data = os.read(p.stdout.fileno(), 65536)
            if not data:
                say("-- closed")
                raise SystemExit(1)
            buf += data

    def send(line):
        p.stdin.write(line + b"\n")
        p.stdin.flush()

    # s_client has sent EHLO and STARTTLS itself; this is over TLS
    send(b"EHLO client.example")
    reply()
    send(b"MAIL FROM:<%s>" % sender.encode())
    reply()
    send(b"RCPT TO:<%s>" % rcpt.encode())
    reply()
    send(b"DATA")
    reply()
    with open(path, "rb") as f:
        for ln in f.read().split(b"\r\n")[:-1]:
            send(ln)
    send(b".")
    reply()
    send(b"QUIT")
    reply()
    p.stdin.close()
    p.wait(timeout=TIMEOUT)


def main():
    cmd, port = sys.argv[1], int(sys.argv[2])
    if cmd == "smtplib":
        do_smtplib(port, sys.argv[3], sys.argv[4], sys.argv[5])
    elif cmd == "inject":
        do_inject(port)
    elif cmd == "garbage":
        do_garbage(port)
    elif cmd == "hold":
        do_hold(port)
    elif cmd == "fingerprint":
        do_fingerprint(port)
    elif cmd == "after":
        do_after(port)
    elif cmd == "s_client":
        do_s_client(port, sys.argv[3], sys.argv[4], sys.argv[5])
    else:
        sys.exit("unknown command %r" % cmd)


if __name__ == "__main__":
    main()
