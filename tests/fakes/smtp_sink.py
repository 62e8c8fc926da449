#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Loopback SMTP sink: speaks enough ESMTP for libcurl (EHLO, AUTH PLAIN/LOGIN, MAIL, RCPT,
DATA with dot-unstuffing, RSET, NOOP, QUIT) and writes every accepted message to
DIR/NNNN.eml with its envelope in DIR/NNNN.json ({"from", "to", "auth_user"}).

Usage: smtp_sink.py --port-file FILE --dir DIR [--username U --password P]
                    [--fail-data N] [--fail-code 451]
  --username/--password   advertise AUTH and require it before MAIL
  --fail-data N           answer the first N DATA transactions with --fail-code (nothing stored)
"""

import argparse
import base64
import json
import os
import socketserver
import sys
import threading

lock = threading.Lock()
counter = {"stored": 0, "data_failures": 0}


class Handler(socketserver.StreamRequestHandler):
    def send(self, line):
        self.wfile.write((line + "\r\n").encode())
        self.wfile.flush()

    def readline(self):
        line = self.rfile.readline(65536)
        if not line:
            raise EOFError
        return line.decode("utf-8", "replace").rstrip("\r\n")

    def check_auth(self, user, password):
        opts = self.server.opts
        return user == opts.username and password == opts.password

    def handle(self):
        opts = self.server.opts
        mail_from, rcpts, user = None, [], None
        self.send("220 sink.localhost ESMTP test sink")
        try:
            while True:
                line = self.readline()
                cmd = line.split(" ", 1)[0].upper()
                arg = line[len(cmd):].strip()
                if cmd in ("EHLO", "HELO"):
                    if cmd == "EHLO":
                        self.wfile.write(b"250-sink.localhost\r\n250-8BITMIME\r\n")
                        if opts.username:
                            self.wfile.write(b"250-AUTH PLAIN LOGIN\r\n")
                        self.send("250 SIZE 10485760")
                    else:
                        self.send("250 sink.localhost")
                elif cmd == "AUTH":
                    parts = arg.split()
                    mech = parts[0].upper() if parts else ""
                    if mech == "PLAIN":
                        token = parts[1] if len(parts) > 1 else None
                        if token is None:
                            self.send("334 ")
                            token = self.readline()
                        fields = base64.b64decode(token).split(b"\0")
                        u, p = fields[1].decode(), fields[2].decode()
                    elif mech == "LOGIN":
                        if len(parts) > 1:
                            u = base64.b64decode(parts[1]).decode()
                        else:
                            self.send("334 VXNlcm5hbWU6")
                            u = base64.b64decode(self.readline()).decode()
                        self.send("334 UGFzc3dvcmQ6")
                        p = base64.b64decode(self.readline()).decode()
                    else:
                        self.send("504 5.5.4 mechanism not supported")
                        continue
                    if self.check_auth(u, p):
                        user = u
                        self.send("235 2.7.0 Authentication successful")
                    else:
                        self.send("535 5.7.8 Authentication credentials invalid")
                elif cmd == "MAIL":
                    if opts.username and not user:
                        self.send("530 5.7.0 Authentication required")
                        continue
                    mail_from = arg.split(":", 1)[1].strip().split(" ")[0].strip("<>")
                    rcpts = []
                    self.send("250 2.1.0 Ok")
                elif cmd == "RCPT":
                    rcpts.append(arg.split(":", 1)[1].strip().strip("<>"))
                    self.send("250 2.1.5 Ok")
                elif cmd == "DATA":
                    if mail_from is None or not rcpts:
                        self.send("503 5.5.1 need MAIL and RCPT")
                        continue
                    self.send("354 End data with <CR><LF>.<CR><LF>")
                    data = []
                    while True:
                        raw = self.rfile.readline(1 << 20)
                        if not raw:
                            raise EOFError
                        if raw in (b".\r\n", b".\n"):
                            break
                        if raw.startswith(b".."):
                            raw = raw[1:]
                        data.append(raw)
                    with lock:
                        fail = counter["data_failures"] < opts.fail_data
                        if fail:
                            counter["data_failures"] += 1
                        else:
                            counter["stored"] += 1
                            n = counter["stored"]
                    if fail:
                        self.send("%d 4.3.0 fault injected" % opts.fail_code)
                    else:
                        base = os.path.join(opts.dir, "%04d" % n)
                        with open(base + ".json.tmp", "w") as f:
                            json.dump({"from": mail_from, "to": rcpts, "auth_user": user}, f)
                        with open(base + ".eml.tmp", "wb") as f:
                            f.write(b"".join(data))
                        os.rename(base + ".json.tmp", base + ".json")
                        os.rename(base + ".eml.tmp", base + ".eml")
                        self.send("250 2.0.0 Ok: queued as %04d" % n)
                    mail_from, rcpts = None, []
                elif cmd == "RSET":
                    mail_from, rcpts = None, []
                    self.send("250 2.0.0 Ok")
                elif cmd == "NOOP":
                    self.send("250 2.0.0 Ok")
                elif cmd == "QUIT":
                    self.send("221 2.0.0 Bye")
                    return
                else:
                    self.send("502 5.5.2 command not recognized")
        except (EOFError, ConnectionError):
            return


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--username")
    ap.add_argument("--password")
    ap.add_argument("--fail-data", type=int, default=0)
    ap.add_argument("--fail-code", type=int, default=451)
    opts = ap.parse_args()
    os.makedirs(opts.dir, exist_ok=True)
    srv = Server(("127.0.0.1", 0), Handler)
    srv.opts = opts
    tmp = opts.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, opts.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
