"""The ``tokportal_sandbox`` pytest fixture (registered as a plugin by the
wheel): each test gets its own running sandbox's URL, stopped afterwards."""

from __future__ import annotations

from typing import Iterator

import pytest

from . import Sandbox, SandboxUrl


@pytest.fixture
def tokportal_sandbox() -> Iterator[SandboxUrl]:
    """The base URL of a fresh ``tokportal sandbox`` (any ``sk_...`` key
    works), with its controls: ``advance(by, key=...)``, ``verify(...)``,
    ``set_clock``, ``clock``, ``real_time``, ``flag_download_issue``."""
    with Sandbox() as sandbox:
        yield sandbox.url
