"""Headless Chromium driven over the DevTools protocol on a pipe (not a test module).

``--remote-debugging-pipe`` makes Chromium read protocol commands from fd 3
and write replies and events to fd 4, as JSON messages ending in a NUL byte:
no port, no websocket, no Python browser-automation package. A page is opened
in a fresh profile; every console message, uncaught exception, log entry and
network request it causes is recorded, so tests can assert that a page drew
its charts, logged no error and made no request.
"""

from __future__ import annotations

import fcntl
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM_NAMES = ("chromium", "chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",  # running as root in CI
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    # Nothing can leave the machine, whatever a page tries; requests are still recorded.
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--remote-debugging-pipe",
]


def find_chromium() -> str | None:
    """The Chromium executable, or None."""
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass
class PageReport:
    """What opening one page caused."""

    console: list[tuple[str, str]] = field(default_factory=list)  # (type, text)
    exceptions: list[str] = field(default_factory=list)
    log_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def errors(self) -> list[str]:
        """Console errors and assertions, uncaught exceptions, error log entries."""
        bad = [
            f"console.{kind}: {text}" for kind, text in self.console if kind in ("error", "assert")
        ]
        return (
            bad
            + [f"exception: {e}" for e in self.exceptions]
            + [f"log: {e}" for e in self.log_errors]
        )


class Chromium:
    """One headless Chromium process with a page session; use as a context manager."""

    def __init__(self, executable: str, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="exq-chromium-")
        cmd_read, self._cmd_write = os.pipe()
        self._out_read, out_write = os.pipe()

        def wire_fds() -> None:  # in the child: its fd 3 reads commands, fd 4 writes replies
            a = fcntl.fcntl(cmd_read, fcntl.F_DUPFD, 100)
            b = fcntl.fcntl(out_write, fcntl.F_DUPFD, 100)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [executable, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=wire_fds,
            pass_fds=(3, 4),
            start_new_session=True,
        )
        os.close(cmd_read)
        os.close(out_write)
        self._next_id = 0
        self._replies: dict[int, dict[str, Any]] = {}
        self._events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._lock = threading.Condition()
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()
        self.session = ""

    # -- the protocol -------------------------------------------------------------

    def _read_loop(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = os.read(self._out_read, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                with self._lock:
                    self._lock.notify_all()
                return
            buffer += chunk
            while b"\0" in buffer:
                raw, buffer = buffer.split(b"\0", 1)
                message = json.loads(raw)
                if "id" in message:
                    with self._lock:
                        self._replies[message["id"]] = message
                        self._lock.notify_all()
                else:
                    self._events.put(message)

    def send(
        self, method: str, params: dict[str, Any] | None = None, *, session: bool = True
    ) -> Any:
        """Send one command and wait for its reply; its ``result``, or AssertionError."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        os.write(self._cmd_write, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        with self._lock:
            while self._next_id not in self._replies:
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise AssertionError(f"chromium did not answer {method}")
                self._lock.wait(min(left, 0.5))
            reply = self._replies.pop(self._next_id)
        if "error" in reply:
            raise AssertionError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def _drain(self, report: PageReport, until: str | None = None, seconds: float = 0.0) -> bool:
        """Record events; stop at the event ``until`` (True) or after ``seconds`` (False)."""
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            try:
                event = (
                    self._events.get(timeout=max(left, 0.0))
                    if left > 0
                    else self._events.get_nowait()
                )
            except queue.Empty:
                return False
            _record(report, event)
            if until is not None and event.get("method") == until:
                return True

    # -- pages ------------------------------------------------------------------------

    def open(self) -> Chromium:
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)
        attached = self.send(
            "Target.attachToTarget",
            {"targetId": target["targetId"], "flatten": True},
            session=False,
        )
        self.session = attached["sessionId"]
        for domain in ("Runtime", "Log", "Network", "Page"):
            self.send(f"{domain}.enable")
        return self

    def load(self, url: str) -> PageReport:
        """Navigate to ``url`` and wait for its load event."""
        report = PageReport()
        self._drain(report)  # events of about:blank are not this page's
        report.console.clear()
        report.requests.clear()
        self.send("Page.navigate", {"url": url})
        if not self._drain(report, until="Page.loadEventFired", seconds=self.timeout):
            raise AssertionError(f"{url} did not load within {self.timeout} s")
        return report

    def evaluate(self, report: PageReport, expression: str) -> Any:
        """The value of ``expression`` in the page (promises awaited)."""
        result = self.send(
            "Runtime.evaluate",
            {
                "expression": expression,
                "awaitPromise": True,
                "returnByValue": True,
            },
        )
        self._drain(report)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def settle(self, report: PageReport, seconds: float = 0.3) -> None:
        """Record what the page does for a little longer (late requests, late errors)."""
        self._drain(report, seconds=seconds)

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                self.send("Browser.close", session=False)
        except (AssertionError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, 9)
            self.proc.wait()
        for fd in (self._cmd_write, self._out_read):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Chromium:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _record(report: PageReport, event: dict[str, Any]) -> None:
    method = event.get("method")
    params = event.get("params", {})
    if method == "Runtime.consoleAPICalled":
        text = " ".join(
            str(arg.get("value", arg.get("description", ""))) for arg in params.get("args", [])
        )
        report.console.append((params.get("type", ""), text))
    elif method == "Runtime.exceptionThrown":
        details = params.get("exceptionDetails", {})
        report.exceptions.append(
            str(details.get("exception", {}).get("description") or details.get("text"))
        )
    elif method == "Log.entryAdded":
        entry = params.get("entry", {})
        if entry.get("level") == "error":
            report.log_errors.append(f"{entry.get('text')} {entry.get('url', '')}".strip())
    elif method == "Network.requestWillBeSent":
        report.requests.append(params.get("request", {}).get("url", ""))


def page_url(path: Path) -> str:
    return path.absolute().as_uri()
