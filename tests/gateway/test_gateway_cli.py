"""`steward gateway` as a user starts it: a real process from a config file, on loopback, with a per-role
policy. (The apps are tested in-process elsewhere; this is the command's own start-up path.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import yaml

from steward.service.audit import AuditLog, database_url
from steward.service.keys import KeyStore
from steward.service.loopback import wait_ready
from tests.serve.conftest import _free_port


def test_the_gateway_command_starts_from_a_config_and_applies_role_policies(tiny_chat_dir: Path,
                                                                            tmp_path: Path) -> None:
    from steward.service.guards.detector import ensure

    ensure()  # the default guards load the built-in detector: build it first, not inside the readiness wait
    run_dir, port = tmp_path / "run", _free_port()
    config = tmp_path / "steward.yaml"
    config.write_text(yaml.safe_dump({"run_dir": str(run_dir), "gateway": {
        "backend": "local", "model_path": str(tiny_chat_dir), "model_name": "support-bot", "port": port,
        "guards": {"blocked_topics": ["crypto"]}, "policies": {"admin": {"blocked_topics": []}}}}))
    run_dir.mkdir()
    log = AuditLog(database_url(None, run_dir))
    keys = {role: KeyStore(log.engine).create(role, "cli test")[1] for role in ("chat", "admin")}
    log.close()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS": ""}
    proc = subprocess.Popen([sys.executable, "-m", "steward.cli.app", "gateway", "-c", str(config)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_ready(url, 240, lambda: proc.poll() is None), proc.stderr.read().decode()[-3000:] \
            if proc.poll() is not None and proc.stderr else "not ready"
        body = {"model": "support-bot", "max_tokens": 4, "messages": [{"role": "user", "content": "tell me about crypto"}]}
        with httpx.Client(timeout=60) as client:
            chat = client.post(f"{url}/v1/chat/completions", json=body,
                               headers={"Authorization": f"Bearer {keys['chat']}"})
            admin = client.post(f"{url}/v1/chat/completions", json=body,
                                headers={"Authorization": f"Bearer {keys['admin']}"})
        assert chat.status_code == 400 and chat.json()["error"]["code"] == "blocked_topic", chat.text
        assert admin.status_code == 200, admin.text  # the admin policy lifts the topic block
    finally:
        proc.terminate()
        proc.wait(30)
