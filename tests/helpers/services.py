"""Tests that need a service the machine may lack (PostgreSQL, headless Chromium)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import pytest

from helpers.checkout import REPO
from helpers.waiting import SAFETY_TIMEOUT


def missing_service(message: str) -> NoReturn:
    """Skip the test saying what is missing; in CI (``CI`` set, as ``.ci/run`` does) fail instead.

    ``make test`` installs these services, so in CI a skip would hide a broken install step.
    """
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI installs it: see make test)")
    pytest.skip(message)


@contextmanager
def postgres_server(*, password_file: bool = False) -> Iterator[tuple[str, Path | None]]:
    """A PostgreSQL server's URL (no password in it) and the pgpass file that holds its password.

    ``make test``'s server (``GENRE_TEST_POSTGRES_URL``, with ``PGPASSFILE`` where set; with
    ``password_file``, only when it is set), else a throw-away one that ``.ci/postgres.sh`` starts here
    (its own private state dir) and stops afterwards, else :func:`missing_service`.
    """
    url, pgpass = os.environ.get("GENRE_TEST_POSTGRES_URL"), os.environ.get("PGPASSFILE")
    if url and (pgpass or not password_file):
        yield url, Path(pgpass) if pgpass else None
        return
    script = str(REPO / ".ci" / "postgres.sh")
    started = subprocess.run(
        ["bash", script, "start"],
        text=True,
        capture_output=True,
        env={**os.environ, "POSTGRES_INSTALL": "no"},
        timeout=SAFETY_TIMEOUT,
    )
    if started.returncode != 0:
        missing_service(
            "no PostgreSQL server: set GENRE_TEST_POSTGRES_URL, or run `make test`, which installs and "
            f"starts one ({started.stderr.strip().splitlines()[-1] if started.stderr.strip() else 'failed'})"
        )
    state = Path(started.stdout.strip().splitlines()[-1])
    try:
        yield (state / "url").read_text().strip(), state / "pgpass"
    finally:
        subprocess.run(["bash", script, "stop", str(state)], capture_output=True)


@contextmanager
def headless_chromium(width: int, height: int) -> Iterator[Any]:
    """A Selenium driver of headless Chromium (Debian's ``chromium`` and ``chromium-driver``) at ``width`` x
    ``height``, quit afterwards; :func:`missing_service` when either is not installed."""
    import shutil

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not browser or not driver_path:
        missing_service("no headless Chromium: install Debian's chromium and chromium-driver (make test does)")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size={width},{height}"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()
