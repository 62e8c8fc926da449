# SPDX-License-Identifier: MIT
"""cdp.py — a small Chrome DevTools Protocol driver for Debian's chromium, standard library only.

Chromium runs headless with --remote-debugging-pipe: it reads commands from its fd 3 and writes
answers and events to its fd 4, one JSON message per NUL-terminated frame. No port, no
websocket library; chromium dies with the driver. What the page tests need and nothing more:
open a page, evaluate JavaScript (and wait on a condition), click an element with real mouse
events, set the viewport, take PNG screenshots, and collect every console error, uncaught
exception and failed or 4xx/5xx request of the page.

    with Browser() as browser:
        page = browser.open("http://127.0.0.1:9090/…", width=1280, height=900)
        page.wait("document.querySelectorAll('tr.run').length > 0", timeout=10)
        page.click("button.run")
        page.screenshot("page.png")
        assert not page.problems, page.problems
"""
import base64
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
    "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
    "--disable-sync", "--disable-component-update", "--disable-default-apps", "--mute-audio",
    "--hide-scrollbars", "--password-store=basic", "--use-mock-keychain", "--lang=fr-CA",
    "--remote-debugging-pipe",
]


class CDPError(Exception):
    pass


class Browser:
    """One chromium process; Browser.open() gives a Page (a target attached in flat mode)."""

    def __init__(self, binary=None, timeout=30):
        self.binary = binary or shutil.which("chromium") or "/usr/bin/chromium"
        self.timeout = timeout
        self.proc = None
        self._next_id = 0
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._replies = {}
        self._listeners = {}   # session id -> callback(method, params)
        self._closed = False

    # -- process and pipe
    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()

    def start(self):
        self.profile = tempfile.mkdtemp(prefix="cdp-profile-")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        # Above 3 and 4, so that putting them in place cannot overwrite one with the other.
        child_r = fcntl.fcntl(to_child_r, fcntl.F_DUPFD_CLOEXEC, 10)
        child_w = fcntl.fcntl(from_child_w, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(to_child_r)
        os.close(from_child_w)

        def remap():  # the child's fd 3 reads our commands, its fd 4 carries the answers
            os.dup2(child_r, 3)
            os.dup2(child_w, 4)

        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(
            [self.binary, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=remap, pass_fds=(3, 4), close_fds=True)  # pass_fds: kept after remap()
        os.close(child_r)
        os.close(child_w)
        threading.Thread(target=self._reader, daemon=True).start()
        self.send("Target.setDiscoverTargets", {"discover": True})
        self.startup_seconds = time.monotonic() - self.started_at

    def close(self):
        if self.proc and self.proc.poll() is None:
            try:
                self.send("Browser.close", timeout=5)
            except CDPError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for fd in (getattr(self, "_to_child", -1), getattr(self, "_from_child", -1)):
            try:
                os.close(fd)
            except OSError:
                pass
        if getattr(self, "profile", None):
            shutil.rmtree(self.profile, ignore_errors=True)

    def _reader(self):
        buf = b""
        while True:
            try:
                chunk = os.read(self._from_child, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                with self._cond:
                    self._closed = True
                    self._cond.notify_all()
                return
            buf += chunk
            while b"\0" in buf:
                frame, buf = buf.split(b"\0", 1)
                self._dispatch(json.loads(frame))

    def _dispatch(self, msg):
        if "id" in msg:
            with self._cond:
                self._replies[msg["id"]] = msg
                self._cond.notify_all()
            return
        listener = self._listeners.get(msg.get("sessionId"))
        if listener:
            listener(msg["method"], msg.get("params", {}))

    def send(self, method, params=None, session=None, timeout=None):
        with self._cond:
            self._next_id += 1
            mid = self._next_id
        msg = {"id": mid, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        data = json.dumps(msg).encode() + b"\0"
        while data:
            data = data[os.write(self._to_child, data):]
        deadline = time.monotonic() + (timeout or self.timeout)
        with self._cond:
            while mid not in self._replies:
                left = deadline - time.monotonic()
                if self._closed or left <= 0:
                    raise CDPError(f"{method}: {'chromium exited' if self._closed else 'no answer'}")
                self._cond.wait(left)
            reply = self._replies.pop(mid)
        if "error" in reply:
            raise CDPError(f"{method}: {reply['error'].get('message')}")
        return reply.get("result", {})

    def open(self, url, width=1280, height=900):
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, target, session)
        self._listeners[session] = page._event
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable", session=session)
        page.viewport(width, height)
        page.navigate(url)
        return page


class Page:
    def __init__(self, browser, target, session):
        self.browser = browser
        self.target = target
        self.session = session
        self.problems = []      # console errors, exceptions, failed requests: a test wants none
        self.requests = {}
        self._loaded = threading.Event()

    def send(self, method, params=None, timeout=None):
        return self.browser.send(method, params, session=self.session, timeout=timeout)

    def _event(self, method, p):
        if method == "Page.loadEventFired":
            self._loaded.set()
        elif method == "Runtime.exceptionThrown":
            d = p["exceptionDetails"]
            self.problems.append("exception: " + (d.get("exception", {}).get("description") or d.get("text", "?")))
        elif method == "Runtime.consoleAPICalled" and p["type"] in ("error", "assert"):
            self.problems.append("console.error: " + " ".join(
                str(a.get("value", a.get("description", ""))) for a in p.get("args", [])))
        elif method == "Log.entryAdded" and p["entry"]["level"] == "error":
            e = p["entry"]
            self.problems.append(f"log: {e.get('text')} {e.get('url', '')}".strip())
        elif method == "Network.requestWillBeSent":
            self.requests[p["requestId"]] = p["request"]["url"]
        elif method == "Network.responseReceived" and p["response"]["status"] >= 400:
            self.problems.append(f"HTTP {p['response']['status']}: {p['response']['url']}")
        elif method == "Network.loadingFailed" and not p.get("canceled"):
            self.problems.append(f"request failed ({p.get('errorText')}): {self.requests.get(p['requestId'], '?')}")

    def navigate(self, url, timeout=30):
        self._loaded.clear()
        self.send("Page.navigate", {"url": url})
        if not self._loaded.wait(timeout):
            raise CDPError(f"{url}: not loaded after {timeout} s")

    def viewport(self, width, height):
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})

    def evaluate(self, expression, await_promise=False):
        r = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                           "awaitPromise": await_promise})
        if "exceptionDetails" in r:
            raise CDPError(f"evaluate {expression!r}: {r['exceptionDetails'].get('text')} "
                           f"{r['exceptionDetails'].get('exception', {}).get('description', '')}")
        return r["result"].get("value")

    def wait(self, expression, timeout=10, interval=0.05):
        """Waits until the expression is truthy in the page; returns its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() >= deadline:
                raise CDPError(f"timed out after {timeout} s waiting for: {expression}")
            time.sleep(interval)

    def click(self, selector):
        """A real click (mouse moved, pressed, released) at the centre of the element."""
        box = self.evaluate(f"""(() => {{
            const e = document.querySelector({json.dumps(selector)});
            if (!e) return null;
            e.scrollIntoView({{block: "center"}});
            const r = e.getBoundingClientRect();
            return {{x: r.x + r.width / 2, y: r.y + r.height / 2}};
        }})()""")
        if not box:
            raise CDPError(f"click: no element matches {selector}")
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", {"type": kind, "x": box["x"], "y": box["y"],
                                                   "button": "left", "clickCount": 1})

    def key(self, key, code=None, text=None):
        """A real key press (Tab, Enter, " "…)."""
        codes = {"Tab": 9, "Enter": 13, " ": 32, "Escape": 27}
        text = text if text is not None else {"Enter": "\r", " ": " "}.get(key)
        base = {"key": key, "code": code or ("Space" if key == " " else key),
                "windowsVirtualKeyCode": codes.get(key, 0)}
        self.send("Input.dispatchKeyEvent", {"type": "keyDown", **base, **({"text": text} if text else {})})
        self.send("Input.dispatchKeyEvent", {"type": "keyUp", **base})

    def screenshot(self, path, full_page=True):
        params = {"format": "png", "captureBeyondViewport": full_page}
        if full_page:
            size = self.evaluate("({w: document.documentElement.scrollWidth, h: document.documentElement.scrollHeight})")
            params["clip"] = {"x": 0, "y": 0, "width": size["w"], "height": size["h"], "scale": 1}
        data = self.send("Page.captureScreenshot", params)["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        return path

    def close(self):
        self.browser.send("Target.closeTarget", {"targetId": self.target})


def main():
    """python3 tests/cdp.py URL OUT.png [--wait JS] [--width W] [--height H]: one screenshot,
    taken once JS is truthy in the page (tests/demo.sh uses it for the Cockpit page)."""
    import argparse
    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("url")
    ap.add_argument("out")
    ap.add_argument("--wait", default="true")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=900)
    ap.add_argument("--timeout", type=float, default=20)
    args = ap.parse_args()
    with Browser() as browser:
        page = browser.open(args.url, args.width, args.height)
        page.wait(args.wait, timeout=args.timeout)
        page.screenshot(args.out)
        if page.problems:
            raise SystemExit("page problems: " + "; ".join(page.problems))


if __name__ == "__main__":
    main()
