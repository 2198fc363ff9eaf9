#!/usr/bin/python3
"""chunking.py - an SMTP server offering PIPELINING and CHUNKING (RFC 3030), for Sluice's client.

Usage: chunking.py --listen HOST:PORT --dir DIR [--reject ADDR]... [--close-after-message]

It takes MAIL, RCPT (an address given with --reject gets "550 5.1.1"), DATA (dot-stuffed) and
BDAT (any number of chunks, the last one marked LAST), RSET, NOOP and QUIT. Each message is
stored as DIR/NNNNNN.eml (the content as received: BDAT octets as they came, DATA with the
dot-stuffing removed) and DIR/NNNNNN.json (mail_from, rcpt_tos, how: "BDAT" or "DATA", chunks:
the BDAT sizes, commands: every command line of the session so far), the .json written last.
With --close-after-message the connection is closed right after the reply that accepted a
message (in the same write as that reply), as servers that limit messages per connection do.
DIR/ready appears once it listens. SIGTERM stops it.
"""
import argparse
import asyncio
import json
import os
import re
import signal

PATH_RE = re.compile(r"^(?:FROM|TO):\s*<([^>]*)>", re.I)


class Session:
    """One connection: the envelope being built and the commands seen."""

    def __init__(self, server, reader, writer):
        self.server, self.reader, self.writer = server, reader, writer
        self.commands = []
        self.stored = False
        self.reset()

    def reset(self):
        self.mail_from, self.rcpts, self.chunks, self.data = None, [], [], b""

    def reply(self, text):
        self.writer.write(text.encode() + b"\r\n")

    async def run(self):
        self.reply("220 chunking.test ESMTP")
        while True:
            line = await self.reader.readline()
            if not line:
                return
            cmd = line.rstrip(b"\r\n").decode("utf-8", "replace")
            self.commands.append(cmd)
            verb, _, arg = cmd.partition(" ")
            handler = getattr(self, "do_" + verb.upper(), None)
            if handler is None:
                self.reply("502 5.5.2 unknown command")
            elif await handler(arg) is False or (self.stored and self.server.close_after):
                await self.writer.drain()
                return
            await self.writer.drain()

    async def do_EHLO(self, arg):
        self.reply("250-chunking.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 CHUNKING")

    async def do_MAIL(self, arg):
        self.reset()
        self.mail_from = PATH_RE.match(arg).group(1)
        self.reply("250 2.1.0 OK")

    async def do_RCPT(self, arg):
        addr = PATH_RE.match(arg).group(1)
        if addr.lower() in self.server.reject:
            self.reply("550 5.1.1 <%s>: no such user here" % addr)
            return
        self.rcpts.append(addr)
        self.reply("250 2.1.5 OK")

    async def do_DATA(self, arg):
        if not self.rcpts:
            self.reply("554 5.5.1 no valid recipients")
            return
        self.reply("354 go ahead")
        await self.writer.drain()
        data = b""
        while True:
            line = await self.reader.readline()
            if line in (b".\r\n", b""):
                break
            data += line[1:] if line.startswith(b".") else line
        self.data = data
        self.store("DATA")

    async def do_BDAT(self, arg):
        parts = arg.split()
        size = int(parts[0])
        chunk = await self.reader.readexactly(size)
        self.chunks.append(size)
        self.data += chunk
        if not self.rcpts:
            self.reply("554 5.5.1 no valid recipients")
        elif len(parts) > 1 and parts[1].upper() == "LAST":
            self.store("BDAT")
        else:
            self.reply("250 2.0.0 %d octets received" % size)

    async def do_RSET(self, arg):
        self.reset()
        self.reply("250 2.0.0 OK")

    async def do_NOOP(self, arg):
        self.reply("250 2.0.0 OK")

    async def do_QUIT(self, arg):
        self.reply("221 2.0.0 bye")
        return False

    def store(self, how):
        n = self.server.next_number()
        base = os.path.join(self.server.dir, "%06d" % n)
        with open(base + ".eml.tmp", "wb") as f:
            f.write(self.data)
        os.rename(base + ".eml.tmp", base + ".eml")
        env = {"mail_from": self.mail_from, "rcpt_tos": self.rcpts, "how": how, "chunks": self.chunks,
               "commands": self.commands}
        with open(base + ".json.tmp", "w") as f:
            json.dump(env, f, indent=1)
        os.rename(base + ".json.tmp", base + ".json")
        self.reply("250 2.0.0 OK chunking %06d" % n)
        self.stored = True
        self.reset()


class Server:
    def __init__(self, directory, reject, close_after):
        self.dir = directory
        self.reject = {r.lower() for r in reject}
        self.close_after = close_after
        self.count = 0

    def next_number(self):
        self.count += 1
        return self.count

    async def handle(self, reader, writer):
        try:
            await Session(self, reader, writer).run()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        writer.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--reject", action="append", default=[])
    ap.add_argument("--close-after-message", action="store_true")
    a = ap.parse_args()
    host, port = a.listen.rsplit(":", 1)
    os.makedirs(a.dir, exist_ok=True)
    srv = Server(a.dir, a.reject, a.close_after_message)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(asyncio.start_server(srv.handle, host=host, port=int(port), reuse_address=True))
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
