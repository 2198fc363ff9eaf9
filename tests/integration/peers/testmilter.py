#!/usr/bin/python3
"""testmilter.py - milters for tests/integration/test_milter_client.py, on inet:PORT@127.0.0.1.

Usage: testmilter.py MODE PORT   (filter also takes unix:PATH for PORT: a Unix socket)
  filter   a pymilter (libmilter) milter: rejects <reject@example.test> at RCPT with
           "550 5.7.1 custom reject for reject@example.test"; TEMPFAILs a message whose Subject
           contains "tempfail" (at its header); a message whose Subject contains "slow" sleeps
           3 x 1 s at end of message, sending progress each time; at end of message it adds
           "X-Test-Milter: seen by testmilter", changes the Subject to "changed: <old>", deletes
           X-Drop, inserts "X-First: top" at the top, adds the recipient <added@example.test>,
           and replaces the body with "Replaced body.\\r\\n" plus the number of body bytes it saw.
           It logs "macro NAME=VALUE" lines for the macros it was given to stdout.
  lazy     a pymilter milter that asks, in the negotiation, not to be told of HELO, the body or
           EOH and not to reply to CONNECT, MAIL, RCPT and headers; at end of message it adds
           "X-Lazy: headers=N" (N: the headers it was told of).
  garbage  a raw server that answers option negotiation properly, then answers the next command
           with bytes that are no milter packet.
  hang     a raw server that answers option negotiation, then never answers anything.
  close    a raw server that answers option negotiation, then closes at the next command.
Prints "ready" once listening.
"""
import socket
import struct
import sys
import threading
import time


def raw_server(mode, port):
    """raw_server - the misbehaving milters: one thread per connection."""
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(16)
    print("ready", flush=True)

    def read_packet(c):
        hdr = b""
        while len(hdr) < 4:
            b = c.recv(4 - len(hdr))
            if not b:
                return None
            hdr += b
        n = struct.unpack(">I", hdr)[0]
        data = b""
        while len(data) < n:
            b = c.recv(n - len(data))
            if not b:
                return None
            data += b
        return data

    def serve(c):
        with c:
            p = read_packet(c)
            if not p or p[:1] != b"O":
                return
            body = b"O" + struct.pack(">III", 6, 0x1FF, 0)
            c.sendall(struct.pack(">I", len(body)) + body)
            p = read_packet(c)
            if p is None:
                return
            if mode == "garbage":
                c.sendall(b"\xff\xff\xff\xffthis is no milter packet")
                time.sleep(5)
            elif mode == "close":
                return
            else:  # hang
                while read_packet(c) is not None:
                    pass

    while True:
        c, _ = ls.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()


def filter_milter(port):
    """filter_milter - the pymilter milter described above."""
    import Milter

    class TestMilter(Milter.Base):
        def __init__(self):
            self.subject = ""
            self.body_len = 0

        def log_macros(self, *names):
            for n in names:
                v = self.getsymval(n)
                if v is not None:
                    print("macro %s=%s" % (n, v), flush=True)

        def connect(self, hostname, family, hostaddr):
            print("connect %s %s" % (hostname, hostaddr), flush=True)
            self.log_macros("j", "{daemon_name}", "{client_addr}")
            return Milter.CONTINUE

        def envfrom(self, f, *params):
            self.body_len = 0
            self.subject = ""
            print("mail %s %s" % (f, " ".join(params)), flush=True)
            self.log_macros("{mail_addr}")
            return Milter.CONTINUE

        def envrcpt(self, to, *params):
            self.log_macros("{rcpt_addr}")
            if to.lower() == "<reject@example.test>":
                self.setreply("550", "5.7.1", "custom reject for reject@example.test")
                return Milter.REJECT
            return Milter.CONTINUE

        def header(self, name, value):
            if name.lower() == "subject":
                self.subject = value
                if "tempfail" in value:
                    return Milter.TEMPFAIL
            return Milter.CONTINUE

        def eoh(self):
            self.log_macros("i")
            return Milter.CONTINUE

        def body(self, chunk):
            self.body_len += len(chunk)
            return Milter.CONTINUE

        def eom(self):
            if "slow" in self.subject:
                for _ in range(3):
                    time.sleep(1)
                    self.progress()
            self.addheader("X-Test-Milter", "seen by testmilter")
            self.chgheader("Subject", 1, "changed: " + self.subject)
            self.chgheader("X-Drop", 1, "")
            self.addheader("X-First", "top", 0)
            self.addrcpt("<added@example.test>")
            self.replacebody(b"Replaced body.\r\nBody bytes seen: %d\r\n" % self.body_len)
            return Milter.CONTINUE

    Milter.factory = TestMilter
    Milter.set_flags(Milter.ADDHDRS | Milter.CHGHDRS | Milter.CHGBODY | Milter.ADDRCPT)
    print("ready", flush=True)
    conn = port if str(port).startswith("unix:") else "inet:%d@127.0.0.1" % port
    Milter.runmilter("testmilter", conn, 60)


def lazy_milter(port):
    """lazy_milter - the pymilter milter that declines events and replies in the negotiation."""
    import Milter

    class LazyMilter(Milter.Base):
        def __init__(self):
            self.headers = 0

        @Milter.noreply
        def connect(self, hostname, family, hostaddr):
            return Milter.CONTINUE

        @Milter.noreply
        def envfrom(self, f, *params):
            self.headers = 0
            return Milter.CONTINUE

        @Milter.noreply
        def envrcpt(self, to, *params):
            return Milter.CONTINUE

        @Milter.noreply
        def header(self, name, value):
            self.headers += 1
            return Milter.CONTINUE

        def eom(self):
            self.addheader("X-Lazy", "headers=%d" % self.headers)
            return Milter.CONTINUE

    Milter.factory = LazyMilter
    Milter.set_flags(Milter.ADDHDRS)
    print("ready", flush=True)
    Milter.runmilter("lazymilter", "inet:%d@127.0.0.1" % port, 60)


def main():
    mode, port = sys.argv[1], sys.argv[2]
    port = port if port.startswith("unix:") else int(port)
    if mode == "filter":
        filter_milter(port)
    elif mode == "lazy":
        lazy_milter(port)
    elif mode in ("garbage", "hang", "close"):
        raw_server(mode, port)
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
