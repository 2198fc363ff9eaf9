#!/usr/bin/python3
"""latency_client - an SMTP client that times the end of DATA precisely (benchmark 5).

SESSIONS threads each open one connection, EHLO, then send messages back to back over it
(MAIL, RCPT, DATA, the body, "."), waiting for every reply (no pipelining) until MESSAGES
messages have been sent in total, then QUIT. For each message the time from the moment the
final ".\\r\\n" is handed to the kernel until the complete 250 reply has been read is measured
with time.perf_counter_ns(); the body (headers and SIZE bytes of text) has been written before
the clock starts, so the figure is the server's end-of-data work: for a durable MTA the queue
file's write, fsync, rename and directory fsync (or its share of a group commit).

Output (stdout): one JSON object {"latencies_ms": [...], "errors": [...], "wall_s": ..., "sent": n}.
Exit status 0 when every message got a 2xx reply, 1 otherwise.
"""
import argparse
import json
import socket
import sys
import threading
import time


class SmtpError(Exception):
    pass


def read_reply(sock, buf):
    """read_reply - (code, text, rest of buffer) of one complete (possibly multi-line) reply."""
    lines = []
    while True:
        while b"\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                raise SmtpError("connection closed by server")
            buf += chunk
        line, buf = buf.split(b"\r\n", 1)
        lines.append(line)
        if len(line) < 4 or line[3:4] != b"-":
            return int(line[:3] or b"0"), b"\n".join(lines).decode("latin-1"), buf


def make_body(size, seq, sender, rcpt):
    """make_body - a message of headers and size bytes of 78-character text lines, dot-safe, CRLF."""
    head = ("From: <%s>\r\nTo: <%s>\r\nSubject: latency %d\r\nMessage-ID: <lat%d@bench.test>\r\n\r\n"
            % (sender, rcpt, seq, seq)).encode()
    line = b"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcd\r\n"
    reps = max(1, size // len(line))
    return head + line * reps


class Session(threading.Thread):
    def __init__(self, args, counter, lock, results, errors):
        super().__init__(daemon=True)
        self.args, self.counter, self.lock = args, counter, lock
        self.results, self.errors = results, errors

    def take(self):
        with self.lock:
            if self.counter[0] >= self.args.messages:
                return None
            self.counter[0] += 1
            return self.counter[0]

    def expect(self, sock, buf, ok, what):
        code, text, buf = read_reply(sock, buf)
        if code // 100 != ok:
            raise SmtpError("%s: %s" % (what, text))
        return buf

    def run(self):
        a = self.args
        try:
            sock = socket.create_connection((a.host, a.port), timeout=a.timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            buf = self.expect(sock, b"", 2, "greeting")
            sock.sendall(b"EHLO latency.bench.test\r\n")
            buf = self.expect(sock, buf, 2, "EHLO")
            while True:
                seq = self.take()
                if seq is None:
                    break
                sock.sendall(("MAIL FROM:<%s>\r\n" % a.sender).encode())
                buf = self.expect(sock, buf, 2, "MAIL")
                sock.sendall(("RCPT TO:<%s>\r\n" % a.rcpt).encode())
                buf = self.expect(sock, buf, 2, "RCPT")
                sock.sendall(b"DATA\r\n")
                buf = self.expect(sock, buf, 3, "DATA")
                sock.sendall(make_body(a.size, seq, a.sender, a.rcpt))
                t0 = time.perf_counter_ns()
                sock.sendall(b".\r\n")
                code, text, buf = read_reply(sock, buf)
                t1 = time.perf_counter_ns()
                if code // 100 != 2:
                    raise SmtpError("end of data: %s" % text)
                with self.lock:
                    self.results.append((t1 - t0) / 1e6)
            sock.sendall(b"QUIT\r\n")
            try:
                read_reply(sock, buf)
            except (SmtpError, OSError):
                pass
            sock.close()
        except (SmtpError, OSError) as e:
            with self.lock:
                self.errors.append(str(e))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--sessions", type=int, default=10)
    ap.add_argument("--messages", type=int, default=2000, help="messages in total, over all sessions")
    ap.add_argument("--size", type=int, default=4096, help="body bytes per message")
    ap.add_argument("--from", dest="sender", default="from@x.test")
    ap.add_argument("--to", dest="rcpt", default="to@y.test")
    ap.add_argument("--timeout", type=float, default=60.0, help="socket timeout per operation, seconds")
    a = ap.parse_args()
    counter, lock, results, errors = [0], threading.Lock(), [], []
    t0 = time.monotonic()
    threads = [Session(a, counter, lock, results, errors) for _ in range(a.sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    json.dump({"latencies_ms": results, "errors": errors, "wall_s": wall, "sent": len(results)}, sys.stdout)
    sys.stdout.write("\n")
    return 0 if not errors and len(results) == a.messages else 1


if __name__ == "__main__":
    sys.exit(main())
