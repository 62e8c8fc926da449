#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Loopback HTTP endpoint that fails every request and echoes it: the worst server a secret can
meet. The answer (status --status, default 400) is JSON whose every text field a client may quote
(error, error_description, errors[0].message, message) carries the request: its credential headers
first (Authorization, x-gazelle-api-key), then its path and query string, then its body. Used by the secret
sweep (tests/integration/test-secrets.sh) as the token endpoint, the API, SendGrid and Google.

Usage: echo.py --port-file FILE [--status N]
"""

import argparse
import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def echo(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode("utf-8", "replace") if n else ""
        creds = " ".join(f"{h}: {self.headers[h]}" for h in ("Authorization", "x-gazelle-api-key")
                         if self.headers.get(h))
        text = f"{creds} {self.path} {body}".strip()
        out = json.dumps({"error": text, "error_description": text, "message": text,
                          "errors": [{"message": text}]}).encode()
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_PATCH = echo

    def log_message(self, *args):
        pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--status", type=int, default=400)
    a = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.status = a.status
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(tmp, a.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
