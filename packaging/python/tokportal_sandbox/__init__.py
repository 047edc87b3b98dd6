"""Start the offline TokPortal sandbox (``tokportal sandbox``) from Python.

``start_sandbox()`` runs the ``tokportal`` binary this wheel installed (or the
one ``TOKPORTAL_BINARY_PATH`` names) with ``sandbox --port 0``, waits for its
``listening on URL`` line and returns the URL. The process is stopped when
Python exits, or earlier with ``stop_sandbox(url)`` or the ``Sandbox`` context
manager. If the sandbox does not start, the error carries its own message.
"""

from __future__ import annotations

import atexit
import os
import queue
import shutil
import subprocess
import sys
import sysconfig
import threading
from typing import Dict, List, Optional, Sequence

__all__ = ["Sandbox", "SandboxError", "binary_path", "start_sandbox", "stop_sandbox"]

_RUNNING: Dict[str, "Sandbox"] = {}


class SandboxError(RuntimeError):
    """The sandbox could not be started; the message is the sandbox's own."""


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
        self.url: str = first[len("listening on "):].strip()
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


def start_sandbox(args: Sequence[str] = (), timeout: float = 20.0) -> str:
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
