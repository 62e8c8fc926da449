#!/usr/bin/env python3
"""Loopback HTTP server with scripted faults, for the HTTP layer's unit test.

Paths (query strings are ignored, counters are per path):
  /ok                 200 "ok"
  /status/N           always status N with body "boom N"
  /flaky/N/K          status N for the first K requests, then 200 (Retry-After: 1 when N=429)
  /retry-date         429 with an HTTP-date Retry-After 1 s ahead once, then 200
  /stall              accepts, sends headers, then nothing for 60 s
  /big                a 3 MiB body
  /slow/MS            200 after MS milliseconds; tracks the highest concurrency seen
  /stats              JSON {"counts": {...}, "max_concurrency": n}
  /capture            200 with X-Message-Id: msg-123
Prints "PORT <n>" on stdout once listening.
"""
import email.utils
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()
counts = {}
concurrent = 0
max_concurrent = 0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, status, body=b"", headers=None):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def handle_any(self):
        global concurrent, max_concurrent
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        path = self.path.split("?", 1)[0]
        with lock:
            counts[path] = counts.get(path, 0) + 1
            n = counts[path]
        parts = path.strip("/").split("/")
        if parts[0] == "ok":
            return self.send(200, b"ok")
        if parts[0] == "capture":
            return self.send(202, b"", {"X-Message-Id": "msg-123"})
        if parts[0] == "status":
            code = int(parts[1])
            return self.send(code, b"boom %d\nsecond line" % code)
        if parts[0] == "flaky":
            code, k = int(parts[1]), int(parts[2])
            if n <= k:
                hdr = {"Retry-After": "1"} if code == 429 else {}
                return self.send(code, b"try later", hdr)
            return self.send(200, b"finally")
        if parts[0] == "retry-date":
            if n == 1:
                when = email.utils.formatdate(time.time() + 2, usegmt=True)
                return self.send(429, b"slow down", {"Retry-After": when})
            return self.send(200, b"finally")
        if parts[0] == "stall":
            self.send_response(200)
            self.send_header("Content-Length", "10")
            self.end_headers()
            self.wfile.flush()
            time.sleep(60)
            return
        if parts[0] == "big":
            return self.send(200, b"x" * (3 * 1024 * 1024))
        if parts[0] == "slow":
            with lock:
                concurrent += 1
                max_concurrent = max(max_concurrent, concurrent)
            time.sleep(int(parts[1]) / 1000)
            with lock:
                concurrent -= 1
            return self.send(200, b"slow")
        if parts[0] == "stats":
            with lock:
                body = json.dumps({"counts": counts, "max_concurrency": max_concurrent}).encode()
            return self.send(200, body)
        return self.send(404, b"no such path")

    do_GET = do_POST = do_PUT = handle_any


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # clients that time out or cancel reset their connection: expected here


def main():
    server = Server(("127.0.0.1", 0), Handler)
    print("PORT %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
