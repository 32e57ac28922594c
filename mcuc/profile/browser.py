"""report.html opened in headless Chromium over the DevTools protocol: console errors, element sizes, a screenshot.

Used by the browser test of the report and to refresh docs/profile.png. Needs the Debian package ``chromium``
and the Python package ``websocket-client`` (both installed by ``make test``). Chromium runs with a fresh
profile and no network features (no sync, no component updates, no QUIC), so it starts on a closed network.
"""
from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcuc.errors import MCUCError

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--remote-debugging-port=0", "about:blank")
START_TIMEOUT_S = 30.0
LOAD_TIMEOUT_S = 30.0

# Every <svg>, with its rendered size and how many shapes it draws.
_SVG_SIZES_JS = """JSON.stringify(Array.from(document.querySelectorAll('svg')).map(s => {
  const r = s.getBoundingClientRect();
  return {width: r.width, height: r.height, shapes: s.querySelectorAll('rect,path,line,circle,text').length};
}))"""


@dataclass
class PageCheck:
    """What the browser saw: console errors and uncaught exceptions, each SVG's size, the page's size and a PNG."""

    errors: list[str] = field(default_factory=list)
    svgs: list[dict[str, Any]] = field(default_factory=list)
    page_width: int = 0
    page_height: int = 0
    screenshot_png: bytes = b""


def find_chromium() -> str:
    """The Chromium executable; MCUCError with the install command when there is none."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise MCUCError("headless Chromium is not installed: apt-get install --no-install-recommends chromium "
                    "(or run 'make sysdeps')")


class _DevTools:
    """A minimal DevTools protocol client over one websocket: commands by id, events collected on the way."""

    def __init__(self, url: str) -> None:
        import websocket  # optional: the dev extra's websocket-client

        self.ws = websocket.create_connection(url, timeout=LOAD_TIMEOUT_S, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise MCUCError(f"Chromium DevTools {method} failed: {msg['error'].get('message')}")
                return dict(msg.get("result", {}))
            if "method" in msg:
                self.events.append(msg)

    def wait_for(self, method: str, timeout: float) -> None:
        end = time.monotonic() + timeout
        while not any(e["method"] == method for e in self.events):
            if time.monotonic() > end:
                raise MCUCError(f"Chromium did not send {method} within {timeout:.0f} s")
            msg = json.loads(self.ws.recv())
            if "method" in msg:
                self.events.append(msg)

    def close(self) -> None:
        self.ws.close()


def check_page(html: Path, width: int = 1200) -> PageCheck:
    """Open ``html`` in headless Chromium at ``width`` CSS pixels; return console errors, SVG sizes and a
    full-page screenshot."""
    exe = find_chromium()
    with tempfile.TemporaryDirectory(prefix="mcuc-chromium-") as profile:
        proc = subprocess.Popen([exe, *CHROMIUM_FLAGS[:-1], f"--user-data-dir={profile}", CHROMIUM_FLAGS[-1]],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            port_file = Path(profile) / "DevToolsActivePort"
            end = time.monotonic() + START_TIMEOUT_S
            while not (port_file.exists() and port_file.read_text().strip()):
                if proc.poll() is not None or time.monotonic() > end:
                    raise MCUCError(f"headless Chromium ({exe}) did not start its DevTools endpoint")
                time.sleep(0.1)
            port = int(port_file.read_text().split()[0])
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
                pages = [t for t in json.load(r) if t.get("type") == "page"]
            dt = _DevTools(pages[0]["webSocketDebuggerUrl"])
            try:
                return _inspect(dt, html, width)
            finally:
                dt.close()
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _inspect(dt: _DevTools, html: Path, width: int) -> PageCheck:
    for domain in ("Page", "Runtime", "Log"):
        dt.call(f"{domain}.enable")
    dt.call("Emulation.setDeviceMetricsOverride", width=width, height=800, deviceScaleFactor=1, mobile=False)
    dt.call("Page.navigate", url=html.resolve().as_uri())
    dt.wait_for("Page.loadEventFired", LOAD_TIMEOUT_S)
    out = PageCheck()
    svgs = dt.call("Runtime.evaluate", expression=_SVG_SIZES_JS, returnByValue=True)
    out.svgs = json.loads(svgs["result"]["value"])
    metrics = dt.call("Page.getLayoutMetrics")["cssContentSize"]
    out.page_width, out.page_height = int(metrics["width"]), int(metrics["height"])
    dt.call("Emulation.setDeviceMetricsOverride", width=width, height=out.page_height, deviceScaleFactor=1,
            mobile=False)
    shot = dt.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
    out.screenshot_png = base64.b64decode(shot["data"])
    for e in dt.events:
        p = e.get("params", {})
        if e["method"] == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            out.errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", [])))
        elif e["method"] == "Runtime.exceptionThrown":
            out.errors.append(str(p.get("exceptionDetails", {}).get("text", "exception")))
        elif e["method"] == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            out.errors.append(str(p["entry"].get("text", "")))
    return out
