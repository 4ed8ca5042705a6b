"""Tests that need a service the machine may lack (PostgreSQL, headless Chromium)."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def missing_service(message: str) -> NoReturn:
    """Skip the test saying what is missing; in CI (``CI`` set, as ``.ci/run`` does) fail instead.

    ``make test`` installs these services, so in CI a skip would hide a broken install step.
    """
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI installs it: see make test)")
    pytest.skip(message)
