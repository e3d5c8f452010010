"""Fixtures for the serve stage: a real throwaway PostgreSQL server on loopback (Debian's packages)."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from steward.service.loopback import wait_ready


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """``postgresql+psycopg://…`` of a fresh cluster started for this test session and stopped after it."""
    bindir = _pg_bin()
    if bindir is None:
        if os.environ.get("STEWARD_REQUIRE_POSTGRES"):
            pytest.fail("PostgreSQL server binaries not found; .ci/run installs Debian's postgresql package")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql; .ci/run does it)")
    # Not under pytest's tmp dir: that is private to root, and the server runs as another user.
    base = Path(tempfile.mkdtemp(prefix="steward-pg-"))
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    # PostgreSQL refuses to run as root: run it as the postgres user the Debian package creates.
    as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_pg:
        shutil.chown(base, "postgres")
        shutil.chown(sock, "postgres")
    port = _free_port()
    subprocess.run([*as_pg, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "steward",
                    "--no-sync"], check=True, capture_output=True)
    subprocess.run([*as_pg, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-w", "-o",
                    f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=on", "start"],
                   check=True, capture_output=True)
    url = f"postgresql+psycopg://steward@127.0.0.1:{port}/postgres"
    for _ in range(50):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            time.sleep(0.1)
    try:
        yield url
    finally:
        subprocess.run([*as_pg, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def fresh_postgres(postgres_url: str) -> Iterator[str]:
    """The session's server with the service tables dropped before the test (each test starts empty)."""
    from sqlalchemy import create_engine

    from steward.service.tables import METADATA

    engine = create_engine(postgres_url)
    METADATA.drop_all(engine)
    engine.dispose()
    yield postgres_url


@pytest.fixture(params=["sqlite", "postgresql"])
def log(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    """An audit log on SQLite and on a real PostgreSQL server (each test runs on both)."""
    from steward.service.audit import AuditLog, database_url

    url = database_url(None, tmp_path) if request.param == "sqlite" else request.getfixturevalue("fresh_postgres")
    audit = AuditLog(url)
    yield audit
    audit.close()


@pytest.fixture(scope="session")
def served_run(demo_data_run: Path, tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run with a tiny trained and evaluated classifier (performance and calibration probes only)."""
    from steward.config import parse_config
    from steward.evaluate import run as run_eval
    from steward.train import run as run_train
    from tests.train.conftest import copy_run, train_cfg

    run_dir = copy_run(demo_data_run, tmp_path_factory.mktemp("serve") / "run")
    run_train(train_cfg(run_dir, tiny_model, method="full", epochs=1, learning_rate=1e-3))
    run_eval(parse_config({"run_dir": str(run_dir), "evaluate": {
        "probes": ["performance", "calibration"], "bootstrap": 20, "threads": 1}}))
    return run_dir


class LiveServer:
    """A real uvicorn server for the app on a loopback port, in a background thread."""

    def __init__(self, app, port: int) -> None:  # type: ignore[no-untyped-def]
        import threading

        import uvicorn

        self.url = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                                    access_log=False))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        if not wait_ready(self.url, 60):
            raise RuntimeError("the service did not become ready")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def start_unready(srv: LiveServer) -> LiveServer:
    """Start a server whose /readyz answers 503 by design (read-only): wait for /healthz instead."""
    import httpx

    srv.thread.start()
    for _ in range(600):
        try:
            if httpx.get(srv.url + "/healthz").status_code == 200:
                return srv
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("the service did not start")


PATTERNS_ONLY = {"injection_model": "patterns"}


def live(run_dir: Path, **serve: object) -> LiveServer:
    """The service for ``run_dir`` on a free loopback port. Its injection guard is patterns only unless the test
    sets ``guards.injection_model``: these tests pin guard outcomes that must not hang on a trained detector's
    judgement; tests/e2e/test_default_guards.py serves the built-in detector, the default."""
    from steward.config import parse_config
    from steward.serve import create_app

    guards = dict(serve.get("guards") or {})  # type: ignore[call-overload]
    serve = {**serve, "guards": {**PATTERNS_ONLY, **guards}}
    cfg = parse_config({"run_dir": str(run_dir), "serve": serve})
    return LiveServer(create_app(cfg), _free_port())


def add_feedback(log: Any, i: int, predicted: str, true: str, gender: str) -> None:
    """A served decision d<i> and the feedback f<i> on it, as the service writes them (for reaudit/retrain)."""
    log.append(decision_id=f"d{i}", kind="predict", key_id="k", model_version="v", model_hash="h", input_hash="x",
               redacted_input="t", findings=[], output={"label": predicted}, latency_ms=1.0)
    log.append(decision_id=f"f{i}", kind="feedback", key_id="k", model_version="v", model_hash="h", input_hash=None,
               redacted_input=None, findings=[], ref=f"d{i}", latency_ms=0.0,
               output={"label": true, "predicted": predicted, "correct": predicted == true, "groups": {"gender": gender}})
