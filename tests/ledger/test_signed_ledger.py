"""The run ledger as a signed log: the attack the hash chain passes (edit a scorecard, recompute its sha256 and
every later hash) fails against the signed checkpoints, and against a witness even if the operator re-signs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from steward.hashing import digest, sha256_tree
from steward.ledger import Ledger, signed
from steward.ledger.checkpoint import Ed25519Signer, default_signer
from steward.ledger.store import GENESIS, LedgerEvent, artifact, now_iso


def _run(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    for stage, name, body in (("data", "data/manifest.json", {"rows": 100}),
                              ("evaluate", "evaluate/scorecard.json", {"gates": {"min_f1": 1.0}, "f1": 0.42})):
        out = run / name
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(body))
        Ledger(run).append(stage=stage, started_at=now_iso(), config_digest="c", inputs=[],
                           outputs=[artifact(out, run, "scorecard" if stage == "evaluate" else "manifest")])
    return run


def _forge(run: Path) -> None:
    """Edit the scorecard's gate and recompute its sha256 and the whole chain, as an operator would."""
    card = run / "evaluate" / "scorecard.json"
    card.write_text(json.dumps({"gates": {"min_f1": 0.42}, "f1": 0.42}))
    events = [json.loads(x) for x in (run / "ledger.jsonl").read_text().splitlines()]
    prev = GENESIS
    for e in events:
        for ref in e["outputs"]:
            if ref["path"] == "evaluate/scorecard.json":
                ref["sha256"] = sha256_tree(card)
        e["prev_hash"] = prev
        e["hash"] = prev = digest(LedgerEvent.from_dict({**e, "hash": ""}).body())
    (run / "ledger.jsonl").write_text("".join(json.dumps(e, sort_keys=True) + "\n" for e in events))


def test_every_append_is_signed_and_witnessed(tmp_path: Path) -> None:
    run = _run(tmp_path)
    report = Ledger(run).verify()
    assert report.ok, report.error
    assert [cp.size for cp in signed.stored(run)] == [1, 2]
    assert Ledger(run).verify(witness_dir=signed.default_witness()).ok


def test_a_recomputed_chain_fails_against_the_signed_checkpoints(tmp_path: Path) -> None:
    run = _run(tmp_path)
    _forge(run)
    assert Ledger(run)._verify_chain().ok  # what `ledger verify` used to say: intact
    report = Ledger(run).verify()
    assert not report.ok and "rewritten" in str(report.error)


def test_re_signing_with_the_key_is_caught_by_the_witness(tmp_path: Path) -> None:
    """The operator holds the key: they forge, delete the stored checkpoints and sign the forged ledger. The
    witness (here the default one, outside the run folder) kept every head it was shown, and refuses the new one."""
    from steward.errors import LedgerIntegrityError

    run = _run(tmp_path)
    _forge(run)
    (run / signed.CHECKPOINTS_NAME).unlink()
    forged = [e.hash for e in Ledger(run).events()]
    with pytest.raises(LedgerIntegrityError, match="forked"):
        signed.sign(run, forged, now_iso())  # the witness that saw the real heads will not take it
    signed.sign(run, forged, now_iso(), witness_dir=tmp_path / "operator-witness")  # a witness of their own
    assert Ledger(run).verify().ok  # re-signed: the run folder alone cannot tell
    report = Ledger(run).verify(witness_dir=signed.default_witness())
    assert not report.ok and ("rewritten" in str(report.error) or "forked" in str(report.error))


def test_another_key_and_unsigned_events_are_named(tmp_path: Path) -> None:
    run = _run(tmp_path)
    report = Ledger(run).verify(public_key=Ed25519Signer.generate().public_key)
    assert not report.ok and "signed by key" in str(report.error)
    (run / signed.CHECKPOINTS_NAME).write_text(signed.stored(run)[0].to_json() + "\n")  # drop the newest
    report = Ledger(run).verify()
    assert not report.ok and "event 1 and later are covered by no signed checkpoint" in str(report.error)
    assert default_signer().public_key  # the same machine key signed both events


def test_a_copied_run_diverges_without_a_false_fork_and_a_restart_is_named(tmp_path: Path) -> None:
    import shutil

    run = _run(tmp_path)
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    for where in (run, copy):  # both go on, differently: two logs now, not a fork
        extra = where / "compress" / "chosen.json"
        extra.parent.mkdir(exist_ok=True)
        extra.write_text(json.dumps({"where": str(where)}))
        Ledger(where).append(stage="compress", started_at=now_iso(), config_digest="c", inputs=[],
                             outputs=[artifact(extra, where, "chosen")])
        assert Ledger(where).verify(witness_dir=signed.default_witness()).ok
    # the folder deleted and the run started over: a new log, and the witness says the old one is gone
    shutil.rmtree(run)
    _run(tmp_path)
    assert Ledger(run).verify().ok
    report = Ledger(run).verify(witness_dir=signed.default_witness())
    assert not report.ok and "replaced or started over" in str(report.error)


def test_an_unsigned_ledger_is_a_warning_and_a_witness_that_never_saw_it_cannot_vouch(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A ledger from before signing (no checkpoints) still verifies by its chain, with a warning saying so;
    the witness's copies still vouch for every event once the run folder's are gone; a witness that never saw
    the ledger cannot vouch for it. A verifier without the key is told to pass one — it never makes a key."""
    run = _run(tmp_path)
    (run / signed.CHECKPOINTS_NAME).unlink()
    report = Ledger(run).verify()
    assert report.ok and any("not signed" in w for w in report.warnings)
    assert Ledger(run).verify(witness_dir=signed.default_witness()).ok
    empty = tmp_path / "empty-witness"
    empty.mkdir()
    run2 = _run(tmp_path / "b")
    report = Ledger(run2).verify(witness_dir=empty)
    assert not report.ok and "holds no checkpoint of this ledger" in str(report.error)
    monkeypatch.setenv("STEWARD_HOME", str(tmp_path / "auditor-home"))
    report = Ledger(run2).verify()
    assert not report.ok and "--public-key" in str(report.error)
    assert not (tmp_path / "auditor-home" / "signing-key.pem").exists()
