"""``.ci/postgres.sh``, the throw-away server the README offers for shared studies: private to the user
who starts it (another local user cannot connect), and never tricked by a planted symbolic link."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import REPO
from helpers.waiting import SAFETY_TIMEOUT

pytestmark = pytest.mark.slow  # starts a database server

SCRIPT = REPO / ".ci" / "postgres.sh"
NO_SERVER = not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")) and shutil.which("initdb") is None


def _script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPT), *args],
        text=True,
        capture_output=True,
        timeout=SAFETY_TIMEOUT,
        env={**os.environ, "POSTGRES_INSTALL": "no"},
    )


def _psql() -> str:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/psql"))
    return str(found[-1]) if found else (shutil.which("psql") or "psql")


@pytest.fixture(scope="module")
def server() -> Iterator[Path]:
    if NO_SERVER:
        pytest.skip("PostgreSQL's server programs are not installed (make test installs them)")
    started = _script("start")
    assert started.returncode == 0, started.stderr
    state = Path(started.stdout.strip().splitlines()[-1])
    try:
        yield state
    finally:
        _script("stop", str(state))
    assert not state.exists()


def _connect(
    server: Path, *prefix: str, env: dict[str, str] | None = None, socket: bool = False
) -> subprocess.CompletedProcess:
    url = (server / "url").read_text().strip()
    port = url.rsplit(":", 1)[1].split("/")[0]
    target = ["-h", str(server / "socket"), "-p", port, "-U", "postgres", "-d", "genre"] if socket else [url]
    return subprocess.run(
        [*prefix, _psql(), "-w", *target, "-tAc", "select 1"],
        text=True,
        capture_output=True,
        timeout=SAFETY_TIMEOUT,
        env=env or {key: value for key, value in os.environ.items() if key != "PGPASSFILE"},
    )


def test_the_owner_connects_with_the_password_file_and_the_url_holds_no_password(server: Path) -> None:
    url = (server / "url").read_text().strip()
    assert url.startswith("postgresql://postgres@127.0.0.1:") and ":" not in url.split("@")[0][len("postgresql://") :]
    assert stat.S_IMODE((server / "pgpass").stat().st_mode) == 0o600
    owner = _connect(server, env={**os.environ, "PGPASSFILE": str(server / "pgpass")})
    assert owner.returncode == 0 and owner.stdout.strip() == "1", owner.stderr
    # Without the password, not even the owner gets in: there is no trust authentication.
    assert _connect(server).returncode != 0


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("runuser") is None, reason="needs root to act as `nobody`")
def test_another_local_user_cannot_connect(server: Path) -> None:
    nobody = ["runuser", "-u", "nobody", "--"]
    over_tcp = _connect(server, *nobody, env={"PATH": os.environ["PATH"], "PGPASSFILE": str(server / "pgpass")})
    assert over_tcp.returncode != 0 and "password" in over_tcp.stderr, over_tcp.stdout
    over_socket = _connect(server, *nobody, env={"PATH": os.environ["PATH"]}, socket=True)
    assert over_socket.returncode != 0, over_socket.stdout
    # Nor can it read the password.
    peek = subprocess.run([*nobody, "cat", str(server / "pgpass")], capture_output=True, text=True)
    assert peek.returncode != 0


def test_a_planted_symbolic_link_is_refused(tmp_path: Path) -> None:
    if NO_SERVER:
        pytest.skip("PostgreSQL's server programs are not installed")
    victim = tmp_path / "victim"
    victim.mkdir(mode=0o755)
    planted = tmp_path / "genre-pg"
    planted.symlink_to(victim)
    before = victim.stat()
    started = _script("start", str(planted))
    assert started.returncode != 0 and "symbolic link" in started.stderr
    after = victim.stat()
    assert (after.st_uid, after.st_mode) == (before.st_uid, before.st_mode) and not list(victim.iterdir())
    assert _script("stop", str(planted)).returncode != 0 and victim.is_dir()
