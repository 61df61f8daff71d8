"""Open a page in headless Chromium and report what a reader would see, over the DevTools protocol.

Chromium is driven through ``--remote-debugging-pipe`` (file descriptors 3 and 4, messages ended
by a NUL byte), so no port, socket or network interface is needed: the check runs in a network
namespace with no network at all. :func:`open_page` loads a page, waits for it and for MathJax to
finish, and returns the console errors, failed or external requests, images and typeset math.
Used by the book's browser test (``pytest -m chromium``).
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM: Path = Path("/usr/bin/chromium")
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-extensions",
    "--disable-default-apps", "--mute-audio", "--remote-debugging-pipe",
]  # fmt: skip

#: Runs in the page once it has loaded: waits for MathJax 2 (if the page has it) to finish
#: typesetting, then collects what the checks need.
_PROBE = """
(async () => {
  if (window.MathJax && MathJax.Hub && MathJax.Hub.Queue) {
    await new Promise((done) => MathJax.Hub.Queue(done));
  }
  const images = [];
  for (const img of document.images) {
    let decoded = true, error = "";
    try { await img.decode(); } catch (e) { decoded = false; error = String(e); }
    images.push({src: (img.getAttribute("src") || "").slice(0, 120), decoded,
                 width: img.naturalWidth, error});
  }
  // the reader's text, without code, scripts and styles (where "$$" could be legitimate)
  const prose = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT, {
    acceptNode: (n) => n.parentElement.closest("pre, code, script, style, textarea")
      ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT,
  });
  while (walker.nextNode()) prose.push(walker.currentNode.nodeValue);
  // math as Sphinx wrote it (\\(...\\) and \\[...\\]); MathJax 2 replaces the TeX by a
  // math/tex script and renders it beside, inside the same element
  const math = [...document.querySelectorAll("span.math.notranslate, div.math.notranslate")];
  const done = (m) => m.querySelector('script[type^="math/tex"]') && m.querySelector(".MathJax, .MathJax_Display");
  return {
    title: document.title,
    text: document.body ? document.body.innerText : "",
    prose: prose.join(" "),
    images,
    math_elements: math.length,
    math_typeset: math.filter(done).length,
    math_errors: document.querySelectorAll(".MathJax_Error, .merror, .noError").length,
    math_raw: math.filter((m) => !done(m)).map((m) => m.textContent.slice(0, 80)),
    details: [...document.querySelectorAll("details")].map((d) => ({
      summary: (d.querySelector("summary") || {textContent: ""}).textContent.trim(),
      open: d.open,
      classes: d.className,
      text: d.textContent.slice(0, 2000),
    })),
  };
})()
"""


class BrowserError(RuntimeError):
    """Chromium could not be started or did not answer."""


@dataclass
class PageReport:
    """What a page showed in headless Chromium."""

    url: str
    title: str = ""
    text: str = ""  # the page's visible text (innerText)
    prose: str = ""  # its text outside code blocks, scripts and styles
    images: list[dict[str, Any]] = field(default_factory=list)
    math_elements: int = 0  # math elements Sphinx wrote
    math_typeset: int = 0  # of which MathJax typeset
    math_errors: int = 0  # MathJax's own error boxes
    math_raw: list[str] = field(default_factory=list)  # math elements left untypeset
    details: list[dict[str, Any]] = field(default_factory=list)  # folded blocks
    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    external_requests: list[str] = field(default_factory=list)  # anything not file: or data:


class _Pipe:
    """The DevTools protocol over Chromium's pipe: JSON messages ended by NUL."""

    def __init__(self, chromium: Path, profile: Path) -> None:
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        # Chromium reads commands on fd 3 and writes answers on fd 4 (bash: dash's redirections
        # take one-digit descriptors only)
        self.proc = subprocess.Popen(
            ["bash", "-c", f'exec "$0" "$@" 3<&{to_chrome_r} 4>&{from_chrome_w}',
             str(chromium), *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            pass_fds=(to_chrome_r, from_chrome_w), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            # Chromium's own process group: its renderers and services are in it (close())
            start_new_session=True,
            # its singleton socket's folder (``org.chromium.Chromium.*``), which a terminated
            # Chromium leaves behind, goes into the profile, removed with it
            env={**os.environ, "TMPDIR": str(profile)},
        )  # fmt: skip
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError("Chromium did not answer in time")
            ready, _, _ = select.select([self._from_chrome], [], [], left)
            if ready:
                chunk = os.read(self._from_chrome, 1 << 16)
                if not chunk:
                    err = (
                        self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                    )
                    raise BrowserError(f"Chromium closed the pipe: {err[-1500:]}")
                self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(message)

    def send(
        self, method: str, params: dict[str, Any] | None = None, *, session: str | None = None,
        timeout: float = 30.0,
    ) -> dict[str, Any]:  # fmt: skip
        """Send one command and wait for its answer (events seen meanwhile are kept)."""
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_chrome, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            answer = self._read_message(deadline)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise BrowserError(f"{method}: {answer['error']}")
                return answer.get("result", {})
            self.events.append(answer)

    def wait_for(self, method: str, timeout: float = 30.0) -> dict[str, Any]:
        """Wait for an event (one already received counts)."""
        for event in self.events:
            if event.get("method") == method:
                return event
        deadline = time.monotonic() + timeout
        while True:
            event = self._read_message(deadline)
            self.events.append(event)
            if event.get("method") == method:
                return event

    def close(self) -> None:
        """End Chromium and every process it started, so that nothing writes into its profile
        folder once this returns. Its network service writes ``Default/Network Persistent
        State`` as it shuts down, which may be after the browser's own process has exited:
        with the profile removed at that moment, CI runs left a ``retention-lab-chromium-*``
        folder behind. The browser's process leads a process group of its own
        (``start_new_session``); this waits until no process is left in it."""
        for fd in (self._to_chrome, self._from_chrome):
            try:
                os.close(fd)
            except OSError:
                pass
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        _end_group(self.proc.pid)


def _end_group(group: int, timeout: float = 10.0) -> None:
    """Wait until no process is left in process group `group` (each one exited and reaped):
    SIGTERM to those left, then SIGKILL to any left after `timeout` seconds (and 2 s more)."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 2.0)):
        deadline = time.monotonic() + wait
        try:
            os.killpg(group, sig)
            while time.monotonic() < deadline:
                time.sleep(0.02)
                os.killpg(group, 0)  # anyone left? (signal 0: only the check)
        except ProcessLookupError:
            return


def _report(url: str, result: dict[str, Any], events: list[dict[str, Any]]) -> PageReport:
    page = PageReport(url=url, **result)
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            args = params.get("args", [])
            page.console_errors.append(
                " ".join(str(a.get("value", a.get("description", ""))) for a in args)
            )
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            text = details.get("exception", {}).get("description") or details.get("text", "")
            page.console_errors.append(f"uncaught: {text}")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            page.console_errors.append(
                f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}"
            )
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            page.failed_requests.append(f"{params.get('errorText')} ({params.get('requestId')})")
        elif method == "Network.requestWillBeSent":
            req_url = params.get("request", {}).get("url", "")
            if not req_url.startswith(("file:", "data:", "about:", "blob:")):
                page.external_requests.append(req_url)
    return page


def open_page(
    url: str, *, chromium: Path = CHROMIUM, timeout: float = 60.0, screenshot: Path | None = None
) -> PageReport:
    """Load `url` in a fresh headless Chromium and report what it showed (see PageReport);
    `screenshot` saves a PNG of the top of the page (1280 x 1600) for a person to look at."""
    if not chromium.exists():
        raise BrowserError(f"{chromium} not found: install it with `make chromium`")
    profile = Path(tempfile.mkdtemp(prefix="retention-lab-chromium-"))
    pipe = _Pipe(chromium, profile)
    try:
        target = pipe.send("Target.createTarget", {"url": "about:blank"}, timeout=timeout)
        session = pipe.send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            pipe.send(f"{domain}.enable", session=session)
        pipe.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1280, "height": 1600, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        pipe.send("Page.navigate", {"url": url}, session=session, timeout=timeout)
        pipe.wait_for("Page.loadEventFired", timeout=timeout)
        answer = pipe.send(
            "Runtime.evaluate",
            {"expression": _PROBE, "awaitPromise": True, "returnByValue": True},
            session=session, timeout=timeout,
        )  # fmt: skip
        if "exceptionDetails" in answer:
            raise BrowserError(f"the page probe failed: {answer['exceptionDetails']}")
        if screenshot is not None:
            shot = pipe.send("Page.captureScreenshot", {"format": "png"}, session=session)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
        # let late console messages (e.g. a font that failed) arrive
        pipe.send("Runtime.evaluate", {"expression": "1"}, session=session)
        return _report(url, answer["result"]["value"], pipe.events)
    finally:
        pipe.close()
        shutil.rmtree(profile, ignore_errors=True)
