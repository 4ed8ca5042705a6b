"""A test whose service is missing skips on a developer's machine and fails in CI."""

from __future__ import annotations

import pytest

from helpers import missing_service


def test_a_missing_service_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no PostgreSQL"):
        missing_service("no PostgreSQL server")


def test_a_missing_service_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"no PostgreSQL server \(CI installs it"):
        missing_service("no PostgreSQL server")
