#!/usr/bin/python3
"""garbage.py - a server that answers every connection with bytes of no protocol, then closes.

Usage: garbage.py PORT DIR    Writes DIR/ready once listening; DIR/count holds the connections.
"""
import os
import socket
import sys
import threading


def main():
    port, d = int(sys.argv[1]), sys.argv[2]
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(16)
    open(os.path.join(d, "ready"), "w").close()
    n = 0
    while True:
        c, _ = ls.accept()
        n += 1
        with open(os.path.join(d, "count"), "w") as f:
            f.write(str(n))

        def serve(c):
            with c:
                c.settimeout(2)
                try:
                    c.recv(65536)
                except OSError:
                    pass
                c.sendall(b"\x00\xff\xfeHTTP/1.0 200 OK\r\n\r\n<html>not a scanner</html>\x01\x02")
        threading.Thread(target=serve, args=(c,), daemon=True).start()


if __name__ == "__main__":
    main()
