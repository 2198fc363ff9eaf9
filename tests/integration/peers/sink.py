#!/usr/bin/python3
"""sink.py - an aiosmtpd SMTP sink for Sluice's integration tests.

Usage: sink.py --listen HOST:PORT --dir DIR [--reject ADDR]... [--tempfail ADDR]... [--no-dsn]
               [--tlscert PEM --tlskey PEM] [--throttle-after N [--throttle-count K]]

Each accepted message is stored as DIR/NNNNNN.eml (the content exactly as received after
removing dot-stuffing, CRLF line ends kept) and DIR/NNNNNN.json (the envelope: mail_from,
mail_options, rcpt_tos, rcpt_options, the raw MAIL/RCPT arguments, the EHLO name and the peer).
The .json file is written last, so a reader that sees it also sees the .eml.
Options keep their case (aiosmtpd upper-cases them; we record the raw arguments instead).
The sink offers DSN (RFC 3461) in its EHLO reply and accepts RET, ENVID, NOTIFY and ORCPT unless
--no-dsn is given. RCPT TO an address given with --reject gets "550 5.1.1", one given with
--tempfail "450 4.2.0" (a soft-failing MX); every such refusal is appended to DIR/refused as
"CODE ADDR" lines.
With --tlscert the sink offers STARTTLS with that certificate; each envelope then records "tls"
(whether the message came over TLS) and every TLS handshake appends the server name the client
sent (SNI, "-" for none) as a line to DIR/sni.
With --throttle-after N, once N messages were accepted the next K (--throttle-count, default 1)
MAIL commands are answered "421 4.7.28 ..." (a provider's rate limit) and the connection closed;
each is appended to DIR/refused as "421 <sender>". --delay SECS waits that long before answering
the end of each message (a slow server, so that deliveries overlap). With --refuse-starttls (and no
--tlscert) the sink offers STARTTLS and answers it "454 4.7.0 TLS not available". The sink counts its
sessions: DIR/sessions.state (JSON) holds the sessions open now ("open": connected, no QUIT yet), the most open at once ("max_open"),
the most open when a MAIL command came ("max_at_mail": connections carrying mail at the same
time, immune to the moment between a client's QUIT and its next connection) and, per closed
session, how many messages it carried ("per_session").
DIR/ready appears once the sink listens. SIGTERM stops it.
"""
import argparse
import asyncio
import json
import os
import re
import signal
import ssl

from aiosmtpd.smtp import SMTP

DSN_PARAMS = ("RET=", "ENVID=", "NOTIFY=", "ORCPT=")
PATH_RE = re.compile(r"^\s*(?:FROM|TO):\s*<[^>]*>\s*(.*)$", re.I | re.S)


def raw_options(arg):
    """raw_options - the parameters after the path of a MAIL/RCPT argument, case kept."""
    m = PATH_RE.match(arg or "")
    return m.group(1).split() if m else []


def strip_dsn(arg):
    """strip_dsn - arg without DSN parameters, so that aiosmtpd's own parser accepts the rest."""
    m = PATH_RE.match(arg or "")
    if not m:
        return arg
    keep = [p for p in m.group(1).split() if not p.upper().startswith(DSN_PARAMS)]
    head = arg[:m.start(1)].rstrip()
    return " ".join([head] + keep)


class SinkSMTP(SMTP):
    """aiosmtpd's SMTP with the raw MAIL/RCPT arguments kept and DSN parameters allowed."""

    dsn = True
    refuse_starttls = False  # offer STARTTLS, answer it 454
    stats = None  # the Handler, which counts sessions

    def connection_made(self, transport):
        self.sink_msgs = 0
        self.sink_ended = False
        self.stats.session_open()
        super().connection_made(transport)

    def sink_end(self):
        if not self.sink_ended:
            self.sink_ended = True
            self.stats.session_closed(self.sink_msgs)

    async def smtp_QUIT(self, arg):
        self.sink_end()  # the session is over for the client: it may open the next one now
        await super().smtp_QUIT(arg)

    def connection_lost(self, exc):
        self.sink_end()
        super().connection_lost(exc)

    async def smtp_STARTTLS(self, arg):
        if not self.refuse_starttls:
            return await super().smtp_STARTTLS(arg)
        await self.push("454 4.7.0 TLS not available")

    async def smtp_MAIL(self, arg):
        self.raw_arg = arg
        await super().smtp_MAIL(strip_dsn(arg) if self.dsn else arg)

    async def smtp_RCPT(self, arg):
        self.raw_arg = arg
        await super().smtp_RCPT(strip_dsn(arg) if self.dsn else arg)


class Handler:
    def __init__(self, directory, reject, tempfail, dsn, throttle_after=None, throttle_count=1, delay=0.0):
        self.dir = directory
        self.delay = delay
        self.reject = {r.lower() for r in reject}
        self.tempfail = {r.lower() for r in tempfail}
        self.dsn = dsn
        self.count = 0
        self.throttle_after = throttle_after
        self.throttle_left = throttle_count
        self.open = 0
        self.max_open = 0
        self.max_at_mail = 0
        self.per_session = []

    def session_open(self):
        self.open += 1
        self.max_open = max(self.max_open, self.open)
        self.write_sessions()

    def session_closed(self, msgs):
        self.open -= 1
        self.per_session.append(msgs)
        self.write_sessions()

    def write_sessions(self):
        path = os.path.join(self.dir, "sessions.state")
        with open(path + ".tmp", "w") as f:
            json.dump({"open": self.open, "max_open": self.max_open, "max_at_mail": self.max_at_mail,
                       "per_session": self.per_session}, f)
        os.rename(path + ".tmp", path)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.dsn:
            responses.insert(len(responses) - 1, "250-DSN")
        if SinkSMTP.refuse_starttls:
            responses.insert(len(responses) - 1, "250-STARTTLS")
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.throttle_after is not None and self.count >= self.throttle_after and self.throttle_left > 0:
            self.throttle_left -= 1
            self.refused(421, address)
            asyncio.get_event_loop().call_soon(server.transport.close)  # 421: the server closes
            return "421 4.7.28 sink.test rate limited: too much mail from your IP, try again later"
        if self.open > self.max_at_mail:
            self.max_at_mail = self.open
            self.write_sessions()
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        envelope.raw_mail = server.raw_arg
        envelope.raw_rcpts = []
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.reject:
            self.refused(550, address)
            return "550 5.1.1 <%s>: no such user here" % address
        if address.lower() in self.tempfail:
            self.refused(450, address)
            return "450 4.2.0 <%s>: lookup failed, try again later" % address
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        envelope.raw_rcpts.append(server.raw_arg)
        return "250 2.1.5 OK"

    def refused(self, code, address):
        with open(os.path.join(self.dir, "refused"), "a") as f:
            f.write("%d %s\n" % (code, address))

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        self.count += 1
        server.sink_msgs += 1
        base = os.path.join(self.dir, "%06d" % self.count)
        with open(base + ".eml.tmp", "wb") as f:
            f.write(envelope.original_content)
        os.rename(base + ".eml.tmp", base + ".eml")
        env = {
            "mail_from": envelope.mail_from,
            "mail_options": raw_options(envelope.raw_mail),
            "rcpt_tos": envelope.rcpt_tos,
            "rcpt_options": [raw_options(a) for a in envelope.raw_rcpts],
            "raw_mail": envelope.raw_mail,
            "raw_rcpts": envelope.raw_rcpts,
            "helo": session.host_name,
            "peer": list(session.peer) if session.peer else None,
            "tls": session.ssl is not None,
        }
        with open(base + ".json.tmp", "w") as f:
            json.dump(env, f, indent=1)
        os.rename(base + ".json.tmp", base + ".json")
        return "250 2.0.0 OK sink %06d" % self.count


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--reject", action="append", default=[])
    ap.add_argument("--tempfail", action="append", default=[])
    ap.add_argument("--no-dsn", action="store_true")
    ap.add_argument("--tlscert")
    ap.add_argument("--tlskey")
    ap.add_argument("--throttle-after", type=int)
    ap.add_argument("--throttle-count", type=int, default=1)
    ap.add_argument("--delay", type=float, default=0.0)
    ap.add_argument("--refuse-starttls", action="store_true")
    a = ap.parse_args()
    host, port = a.listen.rsplit(":", 1)
    os.makedirs(a.dir, exist_ok=True)
    handler = Handler(a.dir, a.reject, a.tempfail, not a.no_dsn, a.throttle_after, a.throttle_count, a.delay)
    SinkSMTP.dsn = not a.no_dsn
    SinkSMTP.stats = handler
    SinkSMTP.refuse_starttls = a.refuse_starttls and not a.tlscert
    handler.write_sessions()

    tls = None
    if a.tlscert:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(a.tlscert, a.tlskey or a.tlscert)

        def on_sni(sslobj, name, ctx):
            with open(os.path.join(a.dir, "sni"), "a") as f:
                f.write("%s\n" % (name or "-"))
        tls.sni_callback = on_sni

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(loop.create_server(
        lambda: SinkSMTP(handler, hostname="sink.test", decode_data=False, enable_SMTPUTF8=True,
                         tls_context=tls),
        host=host, port=int(port), reuse_address=True))
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
