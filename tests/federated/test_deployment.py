"""The federation as separate processes on loopback: a real SuperLink and two real SuperNodes (Flower's own
commands), the app written by `steward federated --write-app`, and `flwr run` — one round, start to model."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from steward.ledger import verify
from tests.federated.conftest import federation, site

BIN = Path(sys.executable).parent


def _free_port() -> int:
    """A port below the ephemeral range (a SuperLink's own client sockets take ephemeral ones)."""
    for port in range(21000, 31000, 7):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        if all(_bindable(port + k) for k in (1, 2)):
            return port
    raise RuntimeError("no free port")


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _wait_for(port: int, proc: subprocess.Popen[bytes], log: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"exited {proc.returncode}: {log.read_text()[-2000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    raise AssertionError(f"port {port} never opened: {log.read_text()[-2000:]}")


def test_a_superlink_and_two_supernodes_train_one_round(site_files: dict[str, Any], tiny_model: Path,
                                                         tmp_path: Path) -> None:
    from steward.federated.deploy import write_app

    run_dir = tmp_path / "federation"
    sites = [site("north", site_files["files"][0]), site("south", site_files["files"][1])]
    cfg = federation(run_dir, sites, tiny_model, site_files["labels"], rounds=1, min_sites=2)
    app = write_app(cfg, tmp_path / "app")
    home = tmp_path / "flwr-home"
    home.mkdir()
    port = _free_port()
    (home / "config.toml").write_text(f'[superlink]\ndefault = "loop"\n\n[superlink.loop]\n'
                                      f'address = "127.0.0.1:{port}"\ninsecure = true\n', encoding="utf-8")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "FLWR_HOME": str(home),
           "FLWR_TELEMETRY_ENABLED": "0", "FLWR_DISABLE_UPDATE_CHECK": "1", "TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS": ""}
    procs: list[subprocess.Popen[bytes]] = []

    def start(name: str, *args: str) -> tuple[subprocess.Popen[bytes], Path]:
        log = tmp_path / f"{name}.log"
        fh = open(log, "wb")
        p = subprocess.Popen([str(BIN / args[0]), *args[1:]], stdout=fh, stderr=subprocess.STDOUT, env=env,
                             cwd=tmp_path, start_new_session=True)
        procs.append(p)
        return p, log

    try:
        link, link_log = start("superlink", "flower-superlink", "--insecure", "--port", str(port),
                               "--disable-runtime-dependency-installation")
        _wait_for(port, link, link_log)
        for k, name in enumerate(("north", "south"), start=1):
            start(f"supernode-{name}", "flower-supernode", "--insecure", "--superlink", f"127.0.0.1:{port}",
                  "--port", str(port + k), "--node-config", f'site="{name}"')
        r = subprocess.run([str(BIN / "flwr"), "run", str(app), "loop", "--stream"], capture_output=True,
                           text=True, env=env, cwd=tmp_path, timeout=900)
        logs = "\n".join(p.read_text(errors="replace")[-1500:] for p in tmp_path.glob("*.log"))
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:] + logs
        deadline = time.monotonic() + 120  # `flwr run --stream` returns when the run ends; the files are written
        while not (run_dir / "federated" / "manifest.json").is_file() and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)

    events = [json.loads(line) for line in (run_dir / "ledger.jsonl").read_text().splitlines()]
    rounds = [e["summary"] for e in events if e["stage"] == "federated_round"]
    assert len(rounds) == 1 and rounds[0]["aggregated"] and rounds[0]["sites"] == ["north", "south"]
    assert events[-1]["stage"] == "federated"
    assert (run_dir / "train" / "model" / "model.safetensors").is_file()
    assert verify(run_dir).ok
    for name in ("north", "south"):  # each SuperNode ran its site's data stage and recorded what it sent
        site_dir = run_dir / "sites" / name
        sent = [json.loads(line) for line in (site_dir / "ledger.jsonl").read_text().splitlines()]
        assert [e["stage"] for e in sent] == ["data", "federated_update"]
        assert sent[-1]["summary"]["update_sha256"] == rounds[0]["update_sha256"][name]
        assert verify(site_dir).ok


@pytest.mark.parametrize("node_site", ["west"])
def test_a_supernode_naming_an_unknown_site_is_refused(site_files: dict[str, Any], tiny_model: Path, tmp_path: Path,
                                                      node_site: str) -> None:
    from steward.errors import SiteError
    from steward.federated.apps import site_for

    cfg = federation(tmp_path / "f", [site("north", site_files["files"][0]), site("south", site_files["files"][1])],
                     tiny_model, site_files["labels"])
    with pytest.raises(SiteError, match=r"'west'.*does not have.*\['north', 'south'\]"):
        site_for(cfg, {"site": node_site}, "token")
    assert site_for(cfg, {"site": "south", "run-dir": str(tmp_path / "own")}, "token").dir == tmp_path / "own"
