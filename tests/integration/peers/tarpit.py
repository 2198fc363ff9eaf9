#!/usr/bin/python3
"""tarpit.py - a listener that accepts TCP connections and never says a word.

Usage: tarpit.py --listen HOST:PORT --dir DIR

Connections are held open (whatever the client sends is read and discarded) until the client
closes them. The tarpit keeps counts in DIR/stats, rewritten atomically on every change as
"total=N open=N max_open=N". DIR/ready appears once it listens. SIGTERM stops it.
"""
import argparse
import asyncio
import os
import signal


class Stats:
    def __init__(self, path):
        self.path = path
        self.total = self.open = self.max_open = 0
        self.write()

    def write(self):
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.write("total=%d open=%d max_open=%d\n" % (self.total, self.open, self.max_open))
        os.replace(tmp, self.path)

    def opened(self):
        self.total += 1
        self.open += 1
        self.max_open = max(self.max_open, self.open)
        self.write()

    def closed(self):
        self.open -= 1
        self.write()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--dir", required=True)
    a = ap.parse_args()
    host, port = a.listen.rsplit(":", 1)
    os.makedirs(a.dir, exist_ok=True)
    stats = Stats(os.path.join(a.dir, "stats"))

    async def hold(reader, writer):
        stats.opened()
        try:
            while await reader.read(4096):
                pass
        except (ConnectionError, OSError):
            pass
        finally:
            stats.closed()
            writer.close()

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(asyncio.start_server(hold, host=host, port=int(port), reuse_address=True,
                                                          backlog=100))
    loop.add_signal_handler(signal.SIGTERM, loop.stop)
    loop.add_signal_handler(signal.SIGINT, loop.stop)
    with open(os.path.join(a.dir, "ready"), "w") as f:
        f.write("%d\n" % os.getpid())
    try:
        loop.run_forever()
    finally:
        server.close()


if __name__ == "__main__":
    main()
