"""Start the offline TokPortal sandbox (``tokportal sandbox``) from Python.

``start_sandbox()`` runs the ``tokportal`` binary this wheel installed (or the
one ``TOKPORTAL_BINARY_PATH`` names) with ``sandbox --port 0``, waits for its
``listening on URL`` line and returns the URL. The process is stopped when
Python exits, or earlier with ``stop_sandbox(url)`` or the ``Sandbox`` context
manager. If the sandbox does not start, the error carries its own message.

The URL it hands out (``SandboxUrl``, a ``str``) also drives the sandbox's
clock and verification, per API key::

    sandbox.set_clock(key=KEY, frozen_at="2026-06-01T00:00:00Z")
    ...  # publish a bundle with KEY
    moved = sandbox.advance("48h", key=KEY)   # the account reaches review
    sandbox.verify(operation="createBundle", times=1, key=KEY)
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import shutil
import subprocess
import sys
import sysconfig
import threading
import urllib.error
import urllib.request
from typing import Any, Dict, List, Optional, Sequence

__all__ = [
    "Sandbox",
    "SandboxError",
    "SandboxUrl",
    "VerificationError",
    "binary_path",
    "start_sandbox",
    "stop_sandbox",
]

_RUNNING: Dict[str, "Sandbox"] = {}


class SandboxError(RuntimeError):
    """The sandbox could not be started, or refused a control request; the
    message is the sandbox's own. ``code`` is its error code (``NO_CLOCK``,
    ``CLOCK_BACKWARDS``, ``VALIDATION_ERROR``), when it gave one."""

    def __init__(self, message: str, code: Optional[str] = None, status: Optional[int] = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class VerificationError(AssertionError):
    """A ``verify`` whose count did not hold: ``found`` is what was counted,
    ``closest`` the sandbox's requests nearest to what was asked."""

    def __init__(self, message: str, found: int, closest: List[Dict[str, Any]]) -> None:
        super().__init__(message)
        self.found = found
        self.closest = closest


def _control(url: str, method: str, route: str, key: Optional[str], body: Any = None) -> Any:
    """One request to a ``/_sandbox/`` route; its ``data``, or the refusal."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{url}/_sandbox/{route}", data=data, method=method)
    if key is not None:
        request.add_header("X-API-Key", key)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return json.load(answer).get("data")
    except urllib.error.HTTPError as refused:
        try:
            error = json.load(refused).get("error", {})
        except ValueError:
            error = {}
        message = error.get("message") or f"HTTP {refused.code}"
        if error.get("code") == "VERIFICATION_FAILED":
            details = error.get("details", {})
            raise VerificationError(message, details.get("found", 0), details.get("closest", [])) from None
        raise SandboxError(message, error.get("code"), refused.code) from None


class SandboxUrl(str):
    """A running sandbox's base URL (a ``str``), with its controls. Every
    clock control is per API key: ``key`` is the key whose clock moves."""

    def clock(self, *, key: str) -> Dict[str, Any]:
        """The key's clock: ``now``, ``simulated``, ``delays``, ``pending``."""
        return _control(self, "GET", "clock", key)

    def set_clock(
        self, *, key: str, frozen_at: Optional[str] = None, delays: Optional[Dict[str, str]] = None
    ) -> Dict[str, Any]:
        """Puts the key on a simulated clock standing still at ``frozen_at``
        (RFC 3339; now by default), with the manager's ``delays``
        (``{"account": "48h", "corrections": "24h", "video": "12h"}``)."""
        body: Dict[str, Any] = {"delays": delays or {}}
        if frozen_at is not None:
            body["frozen_at"] = frozen_at
        return _control(self, "POST", "clock", key, body)

    def advance(self, by: Optional[str] = None, *, key: str, to: Optional[str] = None) -> Dict[str, Any]:
        """Moves the key's clock forward ``by`` (``"36h"``, ``"3d"``) or ``to`` a
        time, doing the manager's work that falls due on the way; returns
        ``{"now", "transitions"}`` once each webhook had its first attempt."""
        body = {"by": by} if to is None else {"to": to}
        return _control(self, "POST", "clock/advance", key, body)

    def real_time(self, *, key: str) -> Dict[str, Any]:
        """Puts the key back on real time."""
        return _control(self, "DELETE", "clock", key)

    def flag_download_issue(self, bundle_id: str, position: int, *, key: str) -> Dict[str, Any]:
        """Makes the account manager flag that video at its next step."""
        body = {"bundle_id": bundle_id, "position": position, "flag": "download_issue"}
        return _control(self, "POST", "manager", key, body)

    def snapshot(self, *, key: Optional[str] = None) -> Dict[str, Any]:
        """The sandbox's state (or ``key``'s part) as one JSON document: build
        a world once, then ``restore`` it before each test."""
        return _control(self, "GET", "snapshot", key)

    def restore(self, doc: Dict[str, Any], *, key: Optional[str] = None) -> Dict[str, Any]:
        """Replaces each key ``doc`` (a ``snapshot()``) names with what it
        holds (only ``key``'s part when given)."""
        return _control(self, "POST", "snapshot", key, doc)

    def verify(self, *, key: Optional[str] = None, **asked: Any) -> Dict[str, Any]:
        """Checks what happened since start or reset: ``operation``,
        ``status``, ``event``, ``dry_run``, ``replayed``, and one of
        ``times``, ``at_least``, ``at_most`` (at least once by default);
        only ``key``'s when given. Raises ``VerificationError`` (an
        ``AssertionError``) when the count does not hold."""
        return _control(self, "POST", "verify", key, asked)


def binary_path() -> str:
    """The ``tokportal`` binary: ``TOKPORTAL_BINARY_PATH``, else the one this
    wheel installed beside the interpreter, else the first on ``PATH``."""
    from_env = os.environ.get("TOKPORTAL_BINARY_PATH")
    if from_env:
        if not os.path.isfile(from_env):
            raise SandboxError(f"TOKPORTAL_BINARY_PATH={from_env} is not a file")
        return from_env
    name = "tokportal.exe" if sys.platform == "win32" else "tokportal"
    beside = os.path.join(sysconfig.get_path("scripts"), name)
    if os.path.isfile(beside):
        return beside
    found = shutil.which("tokportal")
    if found:
        return found
    raise SandboxError(
        "no tokportal binary: reinstall tokportal-sandbox, or set TOKPORTAL_BINARY_PATH"
    )


class Sandbox:
    """A running ``tokportal sandbox`` process. Use as a context manager, or
    call ``stop()``; ``url`` is its base URL."""

    def __init__(self, args: Sequence[str] = (), timeout: float = 20.0) -> None:
        command: List[str] = [binary_path(), "sandbox", "--port", "0", *args]
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._stderr: List[str] = []
        lines: "queue.Queue[Optional[str]]" = queue.Queue()

        def read_stdout() -> None:
            assert self._process.stdout is not None
            for line in self._process.stdout:
                lines.put(line)
            lines.put(None)

        def read_stderr() -> None:
            assert self._process.stderr is not None
            for line in self._process.stderr:
                # Kept bounded: the sandbox logs a line a request.
                if len(self._stderr) < 200:
                    self._stderr.append(line)

        threading.Thread(target=read_stdout, daemon=True).start()
        threading.Thread(target=read_stderr, daemon=True).start()
        try:
            first = lines.get(timeout=timeout)
        except queue.Empty:
            self.stop()
            raise SandboxError(f"the sandbox did not start within {timeout} s")
        if not first or not first.startswith("listening on "):
            self._process.wait(timeout=5)
            message = "".join(self._stderr).strip() or f"exit status {self._process.returncode}"
            raise SandboxError(f"the sandbox did not start: {message}")
        self.url: SandboxUrl = SandboxUrl(first[len("listening on "):].strip())
        #: The inspector page: the live request log, state and deliveries.
        self.inspector_url: str = f"{self.url}/_sandbox/"

    def stop(self) -> None:
        """Stops the sandbox (its state is lost)."""
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        _RUNNING.pop(getattr(self, "url", ""), None)

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def start_sandbox(args: Sequence[str] = (), timeout: float = 20.0) -> SandboxUrl:
    """Starts a sandbox and returns its URL. Extra ``args`` go to ``tokportal
    sandbox`` (``["--credits", "50"]``, ``["--fault-rate", "0.1"]``)."""
    sandbox = Sandbox(args, timeout)
    _RUNNING[sandbox.url] = sandbox
    return sandbox.url


def stop_sandbox(url: str) -> None:
    """Stops the sandbox ``start_sandbox`` returned ``url`` for."""
    sandbox = _RUNNING.pop(url, None)
    if sandbox is not None:
        sandbox.stop()


@atexit.register
def _stop_all() -> None:
    for sandbox in list(_RUNNING.values()):
        sandbox.stop()
