#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Loopback fake of Google's OAuth 2.0 token endpoint and of the Sheets v4 calls the report makes.

Token endpoint (POST /token): grant_type jwt-bearer; the assertion's RS256 signature is checked
against the test key's public half, and its claims: iss (the service account), scope (Sheets),
aud (this endpoint's URL), iat not in the future, exp after now and at most one hour after iat.

Sheets (Bearer token required, unknown or expired tokens get 401):
  GET  /v4/spreadsheets/ID                          sheets[].properties (sheetId, title, gridProperties)
  POST /v4/spreadsheets/ID:batchUpdate              addSheet, updateSheetProperties (gridProperties)
  POST /v4/spreadsheets/ID/values:batchClear        ranges = sheet names
  POST /v4/spreadsheets/ID/values:batchUpdate       valueInputOption RAW only; ranges 'Title'!A<row>
Like Google: a batchUpdate is all or nothing, writing outside a tab's grid is a 400 ("exceeds
grid limits"), and the whole spreadsheet is limited to 10,000,000 cells.

Control (for the tests, JSON):
  GET  /_state                 {"sheets": {title: {"rows", "columns", "values"}}, "requests": [...],
                               "tokens_issued": n, "token_errors": [...]}
  POST /_control {...}         "faults": [{"match": "values:batchUpdate", "status": 429, "count": n,
                                           "retry_after": s}]   (match: substring of "METHOD path")
                               "clear_faults": true, "shared": false (403 PERMISSION_DENIED on
                               every Sheets call), "reset_requests": true, "token_ttl": s

Usage: fake_google.py --port-file FILE --public-key PEM --client-email EMAIL --spreadsheet ID
                      [--sheet TITLE=ROWSxCOLS ...]
"""

import argparse
import base64
import json
import os
import re
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding
except ImportError:
    # tests/deps.sh installs Debian's python3-cryptography for /usr/bin/python3; a python3
    # found first on PATH (pyenv, a venv) may not see it.
    if os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3") and os.path.exists("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    raise

SCOPE = "https://www.googleapis.com/auth/spreadsheets"
MAX_CELLS = 10_000_000
LOCK = threading.Lock()


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


class Sheet:
    def __init__(self, sheet_id, title, rows, cols):
        self.id, self.title, self.rows, self.cols = sheet_id, title, rows, cols
        self.values = {}  # row index (0-based) -> list of cells

    def resize(self, rows, cols):
        self.rows, self.cols = rows, cols
        self.values = {r: v[:cols] for r, v in self.values.items() if r < rows}

    def dump(self):
        out = []
        last = max(self.values) if self.values else -1
        for r in range(last + 1):
            row = list(self.values.get(r, []))
            while row and row[-1] == "":
                row.pop()
            out.append(row)
        while out and not out[-1]:
            out.pop()
        return {"rows": self.rows, "columns": self.cols, "values": out}


class State:
    def __init__(self, args, public_key):
        self.args, self.public_key = args, public_key
        self.spreadsheet = args.spreadsheet
        self.sheets = []
        self.next_id = 0
        for spec in args.sheet or ["Feuille 1=1000x26"]:
            title, size = spec.rsplit("=", 1)
            rows, cols = (int(x) for x in size.split("x"))
            self.add_sheet(title, rows, cols)
        self.tokens = {}  # token -> expiry (monotonic)
        self.token_ttl = args.token_ttl
        self.faults = []
        self.shared = True
        self.requests = []
        self.tokens_issued = 0
        self.token_errors = []

    def add_sheet(self, title, rows, cols):
        s = Sheet(self.next_id, title, rows, cols)
        self.next_id += 17
        self.sheets.append(s)
        return s

    def find(self, title):
        return next((s for s in self.sheets if s.title == title), None)


def parse_range(rng):
    m = re.fullmatch(r"'((?:[^']|'')+)'(?:!([A-Z]+)(\d+))?", rng) or re.fullmatch(r"([^'!]+)(?:!([A-Z]+)(\d+))?", rng)
    if not m:
        return None
    title = m.group(1).replace("''", "'")
    col = 0
    for ch in m.group(2) or "A":
        col = col * 26 + (ord(ch) - 64)
    return title, int(m.group(3) or 1) - 1, col - 1


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state = None

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, obj, headers=None):
        body = json.dumps(obj, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def google_error(self, status, message, reason):
        self.reply(status, {"error": {"code": status, "message": message, "status": reason}})

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def handle_any(self, method):
        st = self.state
        path = urllib.parse.urlsplit(self.path).path
        raw = self.body()
        if path == "/_state":
            with LOCK:
                return self.reply(200, {"sheets": {s.title: s.dump() for s in st.sheets},
                                        "requests": st.requests, "tokens_issued": st.tokens_issued,
                                        "token_errors": st.token_errors})
        if path == "/_control":
            c = json.loads(raw or b"{}")
            with LOCK:
                if c.get("clear_faults"):
                    st.faults = []
                st.faults += [dict(f) for f in c.get("faults", [])]
                if "shared" in c:
                    st.shared = bool(c["shared"])
                if c.get("reset_requests"):
                    st.requests = []
                if "token_ttl" in c:
                    st.token_ttl = int(c["token_ttl"])
            return self.reply(200, {"ok": True})

        what = f"{method} {path}"
        with LOCK:
            st.requests.append({"request": what, "bytes": len(raw)})
            for f in st.faults:
                if f.get("count", 1) != 0 and f["match"] in what:
                    if f.get("count", 1) > 0:
                        f["count"] = f.get("count", 1) - 1
                    status = int(f.get("status", 503))
                    headers = {"Retry-After": str(f["retry_after"])} if "retry_after" in f else {}
                    msg = "Quota exceeded for quota metric 'Write requests'" if status == 429 else "Backend Error"
                    return self.reply(status, {"error": {"code": status, "message": msg,
                                                         "status": "RESOURCE_EXHAUSTED" if status == 429 else
                                                         "UNAVAILABLE"}}, headers)
        if path == "/token" and method == "POST":
            return self.token(raw)
        m = re.fullmatch(r"/v4/spreadsheets/([^/:]+)(:batchUpdate|/values:batchClear|/values:batchUpdate)?", path)
        if not m:
            return self.google_error(404, f"No such endpoint {what}", "NOT_FOUND")
        auth = self.headers.get("Authorization", "")
        with LOCK:
            exp = st.tokens.get(auth[7:]) if auth.startswith("Bearer ") else None
            if exp is None or exp < time.monotonic():
                return self.google_error(401, "Request had invalid authentication credentials.", "UNAUTHENTICATED")
            if urllib.parse.unquote(m.group(1)) != st.spreadsheet:
                return self.google_error(404, "Requested entity was not found.", "NOT_FOUND")
            if not st.shared:
                return self.google_error(403, "The caller does not have permission", "PERMISSION_DENIED")
            try:
                doc = json.loads(raw) if raw else {}
            except ValueError:
                return self.google_error(400, "Invalid JSON payload received.", "INVALID_ARGUMENT")
            op = m.group(2)
            if op is None and method == "GET":
                return self.reply(200, {"spreadsheetId": st.spreadsheet, "sheets": [
                    {"properties": {"sheetId": s.id, "title": s.title, "index": i,
                                    "gridProperties": {"rowCount": s.rows, "columnCount": s.cols}}}
                    for i, s in enumerate(st.sheets)]})
            if op == ":batchUpdate" and method == "POST":
                return self.batch_update(doc)
            if op == "/values:batchClear" and method == "POST":
                return self.batch_clear(doc)
            if op == "/values:batchUpdate" and method == "POST":
                return self.values_update(doc)
            return self.google_error(404, f"No such endpoint {what}", "NOT_FOUND")

    def token(self, raw):
        st = self.state
        form = urllib.parse.parse_qs(raw.decode())
        err = None
        if form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"]:
            err = "unsupported grant_type"
        else:
            err = self.check_jwt((form.get("assertion") or [""])[0])
        with LOCK:
            if err:
                st.token_errors.append(err)
                return self.reply(400, {"error": "invalid_grant", "error_description": err})
            token = "ya29.fake-" + uuid.uuid4().hex
            st.tokens[token] = time.monotonic() + st.token_ttl
            st.tokens_issued += 1
        return self.reply(200, {"access_token": token, "expires_in": st.token_ttl, "token_type": "Bearer"})

    def check_jwt(self, jwt):
        st = self.state
        parts = jwt.split(".")
        if len(parts) != 3:
            return "Invalid JWT: not three segments"
        try:
            header = json.loads(b64url_decode(parts[0]))
            claims = json.loads(b64url_decode(parts[1]))
            sig = b64url_decode(parts[2])
        except ValueError:
            return "Invalid JWT: bad base64url or JSON"
        if header.get("alg") != "RS256":
            return "Invalid JWT: alg must be RS256"
        try:
            st.public_key.verify(sig, f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return "Invalid JWT Signature."
        now = time.time()
        own_url = f"http://{self.headers.get('Host')}/token"
        if claims.get("iss") != st.args.client_email:
            return f"Invalid JWT: iss {claims.get('iss')!r}"
        if SCOPE not in str(claims.get("scope", "")).split():
            return "Invalid JWT: scope"
        if claims.get("aud") != own_url:
            return f"Invalid JWT: aud {claims.get('aud')!r} != {own_url!r}"
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int) or not isinstance(exp, int):
            return "Invalid JWT: iat/exp must be integers"
        if iat > now + 60:
            return "Invalid JWT: iat in the future"
        if exp <= now:
            return "Invalid JWT: Token must be a short-lived token and in a reasonable timeframe"
        if exp - iat > 3600:
            return "Invalid JWT: exp more than one hour after iat"
        return None

    def batch_update(self, doc):
        st = self.state
        # All or nothing: check every request on a copy of the shape first.
        shape = {s.title: [s.rows, s.cols] for s in st.sheets}
        by_id = {s.id: s.title for s in st.sheets}
        plan = []
        for req in doc.get("requests", []):
            if "addSheet" in req:
                p = req["addSheet"].get("properties", {})
                t = p.get("title")
                if not t or t in shape:
                    return self.google_error(400, f"Invalid requests[0].addSheet: A sheet with the name \"{t}\" "
                                                  "already exists. Please enter another name.", "INVALID_ARGUMENT")
                g = p.get("gridProperties", {})
                shape[t] = [g.get("rowCount", 1000), g.get("columnCount", 26)]
                plan.append(("add", t))
            elif "updateSheetProperties" in req:
                u = req["updateSheetProperties"]
                p = u.get("properties", {})
                t = by_id.get(p.get("sheetId"))
                if t is None:
                    return self.google_error(400, f"No grid with id: {p.get('sheetId')}", "INVALID_ARGUMENT")
                if "gridProperties" not in u.get("fields", ""):
                    return self.google_error(400, "fields must name gridProperties", "INVALID_ARGUMENT")
                g = p.get("gridProperties", {})
                shape[t] = [g.get("rowCount", shape[t][0]), g.get("columnCount", shape[t][1])]
                plan.append(("resize", t))
            else:
                return self.google_error(400, f"unsupported request {list(req)}", "INVALID_ARGUMENT")
        if sum(r * c for r, c in shape.values()) > MAX_CELLS:
            return self.google_error(400, "This action would increase the number of cells in the workbook above "
                                          "the limit of 10000000 cells.", "INVALID_ARGUMENT")
        replies = []
        for kind, t in plan:
            rows, cols = shape[t]
            if kind == "add":
                s = st.add_sheet(t, rows, cols)
                replies.append({"addSheet": {"properties": {"sheetId": s.id, "title": t}}})
            else:
                st.find(t).resize(rows, cols)
                replies.append({})
        return self.reply(200, {"spreadsheetId": st.spreadsheet, "replies": replies})

    def batch_clear(self, doc):
        st = self.state
        targets = []
        for rng in doc.get("ranges", []):
            p = parse_range(rng)
            s = st.find(p[0]) if p else None
            if not s:
                return self.google_error(400, f"Unable to parse range: {rng}", "INVALID_ARGUMENT")
            targets.append(s)
        for s in targets:
            s.values = {}
        return self.reply(200, {"spreadsheetId": st.spreadsheet, "clearedRanges": doc.get("ranges", [])})

    def values_update(self, doc):
        st = self.state
        if doc.get("valueInputOption") != "RAW":
            return self.google_error(400, "valueInputOption must be RAW here", "INVALID_ARGUMENT")
        writes = []
        for d in doc.get("data", []):
            p = parse_range(d.get("range", ""))
            s = st.find(p[0]) if p else None
            if not s:
                return self.google_error(400, f"Unable to parse range: {d.get('range')}", "INVALID_ARGUMENT")
            _, row0, col0 = p
            values = d.get("values", [])
            width = max((len(v) for v in values), default=0)
            if row0 + len(values) > s.rows or col0 + width > s.cols:
                return self.google_error(400, f"Range ({d.get('range')}) exceeds grid limits. Max rows: {s.rows}, "
                                              f"max columns: {s.cols}", "INVALID_ARGUMENT")
            for v in values:
                if not all(isinstance(x, str) for x in v):
                    return self.google_error(400, "the report writes strings only", "INVALID_ARGUMENT")
            writes.append((s, row0, col0, values))
        cells = 0
        for s, row0, col0, values in writes:
            for i, v in enumerate(values):
                row = s.values.setdefault(row0 + i, [])
                row.extend([""] * (col0 + len(v) - len(row)))
                row[col0:col0 + len(v)] = v
                cells += len(v)
        return self.reply(200, {"spreadsheetId": st.spreadsheet, "totalUpdatedCells": cells})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--public-key", required=True)
    ap.add_argument("--client-email", required=True)
    ap.add_argument("--spreadsheet", required=True)
    ap.add_argument("--sheet", action="append")
    ap.add_argument("--token-ttl", type=int, default=3599)
    a = ap.parse_args()
    with open(a.public_key, "rb") as f:
        key = serialization.load_pem_public_key(f.read())
    Handler.state = State(a, key)
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(tmp, a.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
