#!/usr/bin/python3
"""sts_https.py - an HTTPS server for MTA-STS policies (RFC 8461 §3.3), for the integration tests.

Usage: sts_https.py --listen HOST:PORT --cert PEM --key PEM --dir DIR

GET /.well-known/mta-sts.txt answers for the domain named by the Host header ("mta-sts.DOMAIN[:port]"):
  - DIR/policies/DOMAIN holds the body (200), with the Content-Type in DIR/policies/DOMAIN.type
    (default "text/plain");
  - DIR/policies/DOMAIN.redirect makes it answer 301 with that file's text as the Location;
  - anything else is 404.
The test may change these files at any time. Every request is appended to DIR/requests as
"DOMAIN PATH STATUS". DIR/ready appears once the server listens. Stop it with SIGTERM.
"""
import argparse
import http.server
import os
import ssl


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 - http.server's naming
        host = (self.headers.get("Host") or "").split(":")[0].lower()
        domain = host[len("mta-sts."):] if host.startswith("mta-sts.") else ""
        base = os.path.join(self.server.dir, "policies", domain)
        status, body, ctype, location = 404, b"not found\n", "text/plain", None
        ok_name = domain and "/" not in domain and not domain.startswith(".")
        if self.path == "/.well-known/mta-sts.txt" and ok_name and os.path.exists(base):
            if os.path.exists(base + ".redirect"):
                with open(base + ".redirect") as f:
                    status, body, location = 301, b"moved\n", f.read().strip()
            else:
                with open(base, "rb") as f:
                    status, body = 200, f.read()
                if os.path.exists(base + ".type"):
                    with open(base + ".type") as f:
                        ctype = f.read().strip()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        if location:
            self.send_header("Location", location)
        self.end_headers()
        self.wfile.write(body)
        with open(os.path.join(self.server.dir, "requests"), "a") as f:
            f.write("%s %s %d\n" % (domain or host, self.path, status))

    def log_message(self, fmt, *args):
        pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--dir", required=True)
    a = ap.parse_args()
    host, port = a.listen.rsplit(":", 1)
    os.makedirs(os.path.join(a.dir, "policies"), exist_ok=True)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    httpd = http.server.ThreadingHTTPServer((host, int(port)), Handler)
    httpd.daemon_threads = True
    httpd.dir = a.dir
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    with open(os.path.join(a.dir, "ready"), "w") as f:
        f.write("%s\n" % os.getpid())
    httpd.serve_forever()


if __name__ == "__main__":
    main()
