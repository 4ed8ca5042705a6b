"""optuna-dashboard has no authentication: whoever reaches it may delete or edit the study. The README's
safe way on a shared machine, ``python -m genre.sweeps.optuna.dashboard``, serves a read-only snapshot on a Unix
socket only its user can reach. Tested with the real optuna-dashboard application and HTTP requests."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest

from helpers.waiting import SAFETY_TIMEOUT

STUDY = "shared-study"
# What any local user could send to a dashboard it reaches: delete the study, rename it, edit a trial.
HOSTILE_REQUESTS = [
    ("DELETE", "/api/studies/1", None),
    ("POST", "/api/studies/1/rename", {"study_name": "renamed"}),
    ("POST", "/api/trials/1/user-attrs", {"user_attrs": {"edited": True}}),
]


class UnixHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection over a Unix socket (what ``ssh -L 8080:<socket>`` forwards to)."""

    def __init__(self, path: Path) -> None:
        super().__init__("localhost", timeout=SAFETY_TIMEOUT)
        self.path = str(path)

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def _request(path: Path, method: str, url: str, body: dict | None = None) -> tuple[int, bytes]:
    connection = UnixHTTPConnection(path)
    try:
        payload = json.dumps(body) if body is not None else None
        connection.request(method, url, body=payload, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _study_state(storage: str) -> list[tuple[str, int, list[dict]]]:
    summaries = optuna.get_all_study_summaries(storage)
    return [
        (
            s.study_name,
            s.n_trials,
            [t.user_attrs for t in optuna.load_study(study_name=s.study_name, storage=storage).trials],
        )
        for s in summaries
    ]


@pytest.fixture
def study(tmp_path: Path) -> str:
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    created = optuna.create_study(study_name=STUDY, storage=storage)
    created.optimize(lambda trial: trial.suggest_float("x", 0.0, 1.0), n_trials=2)
    return storage


@pytest.fixture
def shared_folder() -> Iterator[Path]:
    """A folder every local user may enter (like a shared /tmp), for the dashboard's private folder to go in."""
    folder = Path(tempfile.mkdtemp(prefix="genre-shared-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_the_hostile_requests_do_change_a_study_the_dashboard_serves_as_the_readme_started_it(
    study: str, tmp_path: Path
) -> None:
    """The control: optuna-dashboard on a writable study obeys these requests (so the next test means something)."""
    from optuna_dashboard import wsgi

    from genre.sweeps.optuna.dashboard import UnixWSGIServer

    with UnixWSGIServer(tmp_path / "open.sock", wsgi(study)) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            statuses = [_request(tmp_path / "open.sock", *request)[0] for request in HOSTILE_REQUESTS[:1]]
        finally:
            server.shutdown()
    assert statuses == [204]
    assert _study_state(study) == []  # deleted


@pytest.mark.slow  # starts the dashboard's process
def test_the_safe_dashboard_serves_a_read_only_snapshot_on_a_private_socket(study: str, shared_folder: Path) -> None:
    before = _study_state(study)
    server = subprocess.Popen(
        [sys.executable, "-m", "genre.sweeps.optuna.dashboard", study, "--dir", str(shared_folder)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = server.stdout.readline()  # printed once the socket listens
        assert first.startswith("Serving a read-only snapshot"), first + server.stderr.read()
        sock = Path(first.rsplit(" on ", 1)[1].strip())
        folder = sock.parent
        assert folder.parent == shared_folder
        # Only its user may reach the socket.
        assert (folder.stat().st_mode & 0o777) == 0o700 and (sock.stat().st_mode & 0o777) == 0o600
        status, body = _request(sock, "GET", "/api/studies")
        assert status == 200 and STUDY in body.decode()
        status, body = _request(sock, "GET", "/api/studies/1?after=0")
        assert status == 200 and len(json.loads(body)["trials"]) == 2
        for request in HOSTILE_REQUESTS:
            assert _request(sock, *request)[0] >= 400, request
        # Neither the study nor the snapshot changed.
        assert _study_state(study) == before
        assert _study_state(f"sqlite:///{folder / 'snapshot.db'}") == before
        if os.geteuid() == 0 and shutil.which("runuser"):
            _another_user_cannot_connect(sock)
    finally:
        server.terminate()
        server.communicate(timeout=SAFETY_TIMEOUT)
    assert not folder.exists()  # the snapshot goes with the server


def _another_user_cannot_connect(sock: Path) -> None:
    probe = "import socket, sys; s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])"
    nobody = ["runuser", "-u", "nobody", "--", "python3", "-c"]
    # nobody may enter the shared folder itself: it is the dashboard's own folder that stops it.
    assert subprocess.run([*nobody, "import os, sys; os.listdir(sys.argv[1])", str(sock.parent.parent)]).returncode == 0
    refused = subprocess.run([*nobody, probe, str(sock)], capture_output=True, text=True)
    assert refused.returncode != 0 and "PermissionError" in refused.stderr, refused.stderr


def test_a_storage_without_the_study_is_refused_in_one_line(study: str, tmp_path: Path) -> None:
    from genre.core.errors import ConfigError
    from genre.sweeps.optuna.dashboard import take_snapshot

    with pytest.raises(ConfigError, match="holds no study nope"):
        take_snapshot(study, tmp_path, ["nope"])
