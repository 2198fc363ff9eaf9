#!/usr/bin/python3
"""busy.py - an SMTP server that is always busy: greets "421 4.3.2 busy" and closes.

Usage: busy.py --listen HOST:PORT --dir DIR
Every connection appends a line (the client's address) to DIR/connections. DIR/ready appears
once it listens. SIGTERM stops it.
"""
import argparse
import asyncio
import os
import signal


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--dir", required=True)
    a = ap.parse_args()
    host, port = a.listen.rsplit(":", 1)
    os.makedirs(a.dir, exist_ok=True)
    log = os.path.join(a.dir, "connections")

    async def greet(reader, writer):
        peer = writer.get_extra_info("peername")
        with open(log, "a") as f:
            f.write("%s:%s\n" % (peer[0], peer[1]))
        writer.write(b"421 4.3.2 busy.test busy, try again later\r\n")
        try:
            await writer.drain()
        except ConnectionError:
            pass
        writer.close()

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(asyncio.start_server(greet, host=host, port=int(port), reuse_address=True))
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
