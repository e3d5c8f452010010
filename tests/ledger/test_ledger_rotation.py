"""The run ledger's signing key rotated, the handover recorded in the ledger itself (`steward ledger
rotate-key`). A verifier holding either key checks every event; caught: the old key signing after the
handover, a forged handover to an attacker's key, a key that never signed the ledger."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from steward.cli.app import app as cli
from steward.errors import LedgerIntegrityError
from steward.ledger import Ledger, signed
from steward.ledger.checkpoint import Ed25519Signer, write_key
from steward.ledger.rotation import LEDGER_ROTATION, rotation_statement
from steward.ledger.signed import default_witness as default_dir
from steward.ledger.store import artifact, now_iso
from steward.ledger.trust import attest


def _event(run: Path, stage: str, body: dict, signer: Ed25519Signer | None = None) -> None:  # type: ignore[type-arg]
    out = run / stage / f"{stage}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(body))
    Ledger(run).append(stage=stage, started_at=now_iso(), config_digest="c", inputs=[],
                       outputs=[artifact(out, run, stage)], signer=signer)


@pytest.fixture
def keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Key files outside the run folder; the machine key is "old" ($STEWARD_SIGNING_KEY)."""
    paths = {name: write_key(Ed25519Signer.generate(), tmp_path / "keys" / f"{name}.pem")
             for name in ("old", "new", "stranger")}
    monkeypatch.setenv("STEWARD_SIGNING_KEY", str(paths["old"]))
    return paths


def _public(path: Path) -> bytes:
    from steward.ledger.checkpoint import load_signer

    return load_signer(path).public_key


def test_rotation_through_the_cli_and_both_keys_verify_every_event(tmp_path: Path, keys: dict[str, Path],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    run = tmp_path / "run"
    _event(run, "train", {"weights": "a" * 64})
    runner = CliRunner()
    r = runner.invoke(cli, ["ledger", "rotate-key", "--new-key", str(keys["new"]), "--run-dir", str(run), "--json"])
    assert r.exit_code == 0, r.output
    done = json.loads(r.output)
    assert done["event"] == 1 and done["signed"]
    # the old key is refused from now on, and writes nothing
    before = (run / "ledger.jsonl").read_text()
    with pytest.raises(LedgerIntegrityError, match="handed over to key"):
        _event(run, "evaluate", {"f1": 0.9})
    assert (run / "ledger.jsonl").read_text() == before
    monkeypatch.setenv("STEWARD_SIGNING_KEY", str(keys["new"]))
    _event(run, "evaluate", {"f1": 0.9})
    for name in ("old", "new"):
        report = Ledger(run).verify(public_key=_public(keys[name]), witness_dir=default_dir())
        assert report.ok and report.events == 3, (name, report.error)
    stranger = Ledger(run).verify(public_key=_public(keys["stranger"]))
    assert not stranger.ok and "never signed this log" in str(stranger.error)
    # what a service trusts: the scorecard, signed by the new key; the manifest before it by the old one
    got = attest(run, ["train/train.json", "evaluate/evaluate.json"])
    assert got["evaluate/evaluate.json"].signed_by == done["new_key_id"]
    ok = runner.invoke(cli, ["ledger", "verify", "--run-dir", str(run), "--witness", str(default_dir())])
    assert ok.exit_code == 0, ok.output
    again = runner.invoke(cli, ["ledger", "rotate-key", "--new-key", str(keys["new"]), "--run-dir", str(run)])
    assert again.exit_code != 0 and "is the key that signs the ledger now" in " ".join(again.output.split())


def test_the_old_key_signing_after_the_handover_is_caught(tmp_path: Path, keys: dict[str, Path]) -> None:
    from steward.ledger.checkpoint import load_signer

    run = tmp_path / "run"
    _event(run, "train", {"weights": "a" * 64})
    old = load_signer(keys["old"])
    Ledger(run).rotate_key(old, load_signer(keys["new"]))
    # whoever kept the old key appends past the guard: an event, and a head signed by the old key
    _event(run, "evaluate", {"f1": 0.42}, signer=load_signer(keys["new"]))
    events = Ledger(run).events()
    signed.sign(run, [e.hash for e in events], now_iso(), signer=old)
    for name in ("old", "new"):
        report = Ledger(run).verify(public_key=_public(keys[name]))
        assert not report.ok and "not by the key" in str(report.error), report.error


def test_a_forged_handover_to_an_attackers_key_is_caught(tmp_path: Path, keys: dict[str, Path]) -> None:
    """Someone without the old key appends a rotation to their own key (endorsed by themselves) and signs
    with it: a verifier holding the old key rejects the endorsement."""
    from steward.ledger.checkpoint import load_signer

    run = tmp_path / "run"
    _event(run, "train", {"weights": "a" * 64})
    ledger, attacker = Ledger(run), load_signer(keys["stranger"])
    events = ledger.events()
    origin = signed.origin_for(run, [e.hash for e in events])
    old_pub = _public(keys["old"])
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    forged = attacker.sign(rotation_statement(origin, 2, old_pub, attacker.public_key))
    ledger.append(stage=LEDGER_ROTATION, started_at=now_iso(), config_digest="", inputs=[], outputs=[],
                  summary={"origin": origin, "old_public_key": b64(old_pub), "new_public_key": b64(attacker.public_key),
                           "endorsement": b64(forged)}, signer=attacker)
    report = Ledger(run).verify(public_key=old_pub)
    assert not report.ok and "forged" in str(report.error)
    with pytest.raises(LedgerIntegrityError, match="forged"):
        attest(run, ["train/train.json"], public_key=old_pub)
