#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Loopback fake of SendGrid v3 `POST /v3/mail/send`.

Answers like SendGrid: 202 with an empty body and an `X-Message-Id` header when the request is
valid; 401 (bad or missing `Authorization: Bearer KEY`), 400 (invalid JSON or missing fields) and
403 with SendGrid's `{"errors": [{"message", "field", "help"}]}` body; faults on demand.

Usage: sendgrid.py --port-file FILE [--api-key KEY]

Control (loopback JSON, for the tests):
  GET  /_state        {"requests": n, "accepted": [message, ...], "faults": [...]}
                      message = {"id", "to", "from", "from_name", "subject", "text", "html"}
  POST /_control {...} any of:
       "faults": [rule, ...]   appended; consumed in order, one per request while count > 0
                               (count -1 = forever). rule = {"type": T, "count": n, ...}
                               T: "status" (status, default 503; retry_after for 429/503),
                                  "stall" (seconds: hold the request, then close without answer),
                                  "accept_then_stall" (record the message as accepted, then hold
                                  it for seconds and close without answer: the provider took it
                                  but the client never hears so)
       "clear_faults": true
       "reset": true            forget accepted messages and counters
"""

import argparse
import json
import os
import secrets
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()
state = {"requests": 0, "accepted": [], "faults": []}


def error_body(message, field=None):
    return json.dumps({"errors": [{"message": message, "field": field, "help": None}]}).encode()


def next_fault():
    with lock:
        for rule in state["faults"]:
            if rule.get("count", 1) != 0:
                if rule.get("count", 1) > 0:
                    rule["count"] = rule.get("count", 1) - 1
                return dict(rule)
    return None


def validate(body):
    """Returns (message dict, None) or (None, (status, error body))."""
    try:
        req = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None, (400, error_body("Bad Request: invalid JSON"))
    if not isinstance(req, dict):
        return None, (400, error_body("Bad Request"))
    pers = req.get("personalizations")
    if not isinstance(pers, list) or not pers or not pers[0].get("to"):
        return None, (400, error_body("The personalizations field is required and must have at least one "
                                      "personalization.", "personalizations"))
    to = [t.get("email") for t in pers[0]["to"]]
    frm = req.get("from") or {}
    if not frm.get("email") or "@" not in frm["email"]:
        return None, (400, error_body("The from object must be provided for every email send. It is an object "
                                      "that requires an email parameter, but may also contain a name parameter.",
                                      "from.email"))
    if frm["email"].startswith("unverified"):
        return None, (403, error_body("The from address does not match a verified Sender Identity. Mail cannot be "
                                      "sent until this error is resolved.", "from"))
    if not isinstance(req.get("subject"), str) or not req["subject"]:
        return None, (400, error_body("The subject is required.", "subject"))
    content = {c.get("type"): c.get("value") for c in req.get("content") or []}
    if "text/plain" not in content:
        return None, (400, error_body("The content value must be a string at least one character in length.",
                                      "content.0.value"))
    if any(not t or "@" not in t for t in to):
        return None, (400, error_body("Does not contain a valid address.", "personalizations.0.to.0.email"))
    return {"to": to, "from": frm["email"], "from_name": frm.get("name"), "subject": req["subject"],
            "text": content.get("text/plain"), "html": content.get("text/html")}, None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    api_key = "test-sendgrid-key"

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, body=b"", headers=None):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if body:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        if self.path == "/_state":
            with lock:
                body = json.dumps(state).encode()
            return self.reply(200, body)
        self.reply(404, error_body("not found"))

    def do_POST(self):
        body = self.read_body()
        if self.path == "/_control":
            ctl = json.loads(body or b"{}")
            with lock:
                if ctl.get("reset"):
                    state.update(requests=0, accepted=[], faults=[])
                if ctl.get("clear_faults"):
                    state["faults"] = []
                state["faults"].extend(ctl.get("faults", []))
            return self.reply(200, b"{}")
        if self.path != "/v3/mail/send":
            return self.reply(404, error_body("not found"))
        with lock:
            state["requests"] += 1
        if self.headers.get("Authorization") != "Bearer " + self.api_key:
            return self.reply(401, error_body("The provided authorization grant is invalid, expired, or revoked"))
        fault = next_fault()
        if fault and fault.get("type", "status") == "status":
            status = fault.get("status", 503)
            headers = {}
            if "retry_after" in fault:
                headers["Retry-After"] = str(fault["retry_after"])
            return self.reply(status, error_body("fault injected: HTTP %d" % status), headers)
        if fault and fault["type"] == "stall":
            time.sleep(fault.get("seconds", 30))
            self.close_connection = True
            return
        msg, err = validate(body)
        if err:
            return self.reply(*err)
        msg["id"] = secrets.token_urlsafe(16)
        with lock:
            state["accepted"].append(msg)
        if fault and fault["type"] == "accept_then_stall":
            time.sleep(fault.get("seconds", 30))
            self.close_connection = True
            return
        self.reply(202, b"", {"X-Message-Id": msg["id"]})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--api-key", default="test-sendgrid-key")
    args = ap.parse_args()
    Handler.api_key = args.api_key
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, args.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
