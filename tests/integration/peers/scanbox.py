#!/usr/bin/python3
"""scanbox.py - a stand-in for a scanning box (seed document 001's second approach): an SMTP
server that takes each message, throws away any X-Spam-* fields it arrived with, adds its own
verdict (X-Spam-Flag: YES and X-Spam-Score: 9.5 when the body holds SPAMWORD, else NO and 0.1),
and relays it with the same envelope to the MTA's return port.

Usage: scanbox.py LISTEN_PORT RETURN_PORT DIR    Writes DIR/ready, and DIR/seen (one line per message).
"""
import os
import smtplib
import sys
import time

from aiosmtpd.controller import Controller


class Box:
    def __init__(self, ret, d):
        self.ret = ret
        self.dir = d

    async def handle_DATA(self, server, session, envelope):
        data = envelope.original_content or envelope.content
        head, sep, body = data.partition(b"\r\n\r\n")
        lines = [l for l in head.split(b"\r\n") if not l.lower().startswith(b"x-spam-")]
        spam = b"SPAMWORD" in body
        lines.insert(0, b"X-Spam-Score: %s" % (b"9.5" if spam else b"0.1"))
        lines.insert(0, b"X-Spam-Flag: %s" % (b"YES" if spam else b"NO"))
        out = b"\r\n".join(lines) + sep + body
        with open(os.path.join(self.dir, "seen"), "a") as f:
            f.write("%s %s\n" % (envelope.mail_from, ",".join(envelope.rcpt_tos)))
        try:
            with smtplib.SMTP("127.0.0.1", self.ret, timeout=30) as s:
                s.sendmail(envelope.mail_from, envelope.rcpt_tos, out)
        except Exception as e:  # the MTA keeps the message and retries on a 4xx
            return "451 4.3.0 relay back failed: %s" % e
        return "250 2.0.0 scanned and relayed"


def main():
    port, ret, d = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    c = Controller(Box(ret, d), hostname="127.0.0.1", port=port, decode_data=False)
    c.start()
    open(os.path.join(d, "ready"), "w").close()
    try:
        while True:
            time.sleep(3600)
    finally:
        c.stop()


if __name__ == "__main__":
    main()
