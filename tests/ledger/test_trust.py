"""What a service trusts: the artifact as the newest signed ledger event that produced it recorded it. The
attack: edit the file and the record beside it (recompute the chain); edit the file alone; strip the
checkpoints; append an event without the key; a file no stage produced."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from steward.errors import LedgerIntegrityError
from steward.ledger import Ledger, signed
from steward.ledger.checkpoint import Ed25519Signer, default_signer
from steward.ledger.store import artifact, now_iso
from steward.ledger.trust import attest, summary
from tests.ledger.test_signed_ledger import _forge


def _run(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    for stage, name, body in (("train", "train/manifest.json", {"weights": "a" * 64}),
                              ("evaluate", "evaluate/scorecard.json", {"gates": {"min_f1": 1.0}, "f1": 0.42})):
        out = run / name
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(body))
        Ledger(run).append(stage=stage, started_at=now_iso(), config_digest="c", inputs=[],
                           outputs=[artifact(out, run, out.stem)])
    return run


def test_an_intact_signed_run_is_attested_with_the_event_and_key(tmp_path: Path) -> None:
    run = _run(tmp_path)
    got = attest(run, ["train/manifest.json", "evaluate/scorecard.json"])
    assert got["evaluate/scorecard.json"].event_index == 1 and got["train/manifest.json"].stage == "train"
    kid = got["train/manifest.json"].signed_by
    assert kid and summary(got)["signed_by"] == kid
    assert summary(got)["artifacts"]["evaluate/scorecard.json"]["event"] == 1


def test_the_newest_producer_vouches(tmp_path: Path) -> None:
    run = _run(tmp_path)
    card = run / "evaluate" / "scorecard.json"
    card.write_text(json.dumps({"gates": {}, "f1": 0.9}))
    with pytest.raises(LedgerIntegrityError, match=r"evaluate/scorecard.json differs from what ledger event 1"):
        attest(run, ["evaluate/scorecard.json"])
    Ledger(run).append(stage="evaluate", started_at=now_iso(), config_digest="c", inputs=[],
                       outputs=[artifact(card, run, "scorecard")])
    assert attest(run, ["evaluate/scorecard.json"])["evaluate/scorecard.json"].event_index == 2


def test_a_recomputed_chain_is_refused(tmp_path: Path) -> None:
    run = _run(tmp_path)
    _forge(run)  # scorecard edited, its hash and the chain recomputed: the chain alone says intact
    assert Ledger(run).check_chain().ok
    with pytest.raises(LedgerIntegrityError, match=r"ewritten|does not extend|root"):
        attest(run, ["evaluate/scorecard.json"])


def test_a_ledger_stripped_of_its_checkpoints_is_refused_unless_allowed(tmp_path: Path) -> None:
    run = _run(tmp_path)
    (run / signed.CHECKPOINTS_NAME).unlink()
    with pytest.raises(LedgerIntegrityError, match=r"not signed.*unsigned_ledger: allow"):
        attest(run, ["train/manifest.json"])
    got = attest(run, ["train/manifest.json"], allow_unsigned=True)
    assert got["train/manifest.json"].signed_by is None and summary(got)["signed_by"] == "unsigned"
    # allowed or not, the chain still holds the file to its hash
    (run / "train" / "manifest.json").write_text("{}")
    with pytest.raises(LedgerIntegrityError, match="sha256 mismatch"):
        attest(run, ["train/manifest.json"], allow_unsigned=True)


def test_an_event_appended_without_the_key_vouches_for_nothing(tmp_path: Path) -> None:
    run = _run(tmp_path)
    lines = (run / "ledger.jsonl").read_text().splitlines()
    last = json.loads(lines[-1])
    extra = run / "train" / "model.bin"
    extra.write_text("weights")
    from steward.hashing import digest, sha256_tree
    from steward.ledger.store import LedgerEvent

    ev = {**last, "index": 2, "stage": "train", "prev_hash": last["hash"],
          "outputs": [{"path": "train/model.bin", "sha256": sha256_tree(extra), "role": "model"}]}
    ev["hash"] = digest(LedgerEvent.from_dict({**ev, "hash": ""}).body())
    (run / "ledger.jsonl").write_text("\n".join([*lines, json.dumps(ev, sort_keys=True)]) + "\n")
    assert Ledger(run).check_chain().ok
    with pytest.raises(LedgerIntegrityError, match=r"event 2 .* covered by no signed checkpoint"):
        attest(run, ["train/model.bin"])
    assert attest(run, ["train/manifest.json"])  # what the signed events produced is still vouched for


def test_a_file_no_stage_produced_and_a_deleted_one(tmp_path: Path) -> None:
    run = _run(tmp_path)
    (run / "compress").mkdir()
    (run / "compress" / "chosen.json").write_text("{}")
    with pytest.raises(LedgerIntegrityError, match=r"compress/chosen.json: no ledger event produced it"):
        attest(run, ["train/manifest.json"], optional=["compress/chosen.json"])
    (run / "compress" / "chosen.json").unlink()
    assert set(attest(run, ["train/manifest.json"], optional=["compress/chosen.json"])) == {"train/manifest.json"}
    (run / "evaluate" / "scorecard.json").unlink()
    with pytest.raises(LedgerIntegrityError, match="missing, but ledger event 1"):
        attest(run, ["train/manifest.json"], optional=["evaluate/scorecard.json"])


def test_the_key_must_be_the_signers(tmp_path: Path) -> None:
    run = _run(tmp_path)
    assert attest(run, ["train/manifest.json"], public_key=default_signer().public_key)
    with pytest.raises(LedgerIntegrityError):
        attest(run, ["train/manifest.json"], public_key=Ed25519Signer.generate().public_key)


def test_ledger_sign_signs_an_old_ledger_and_refuses_a_broken_one(tmp_path: Path) -> None:
    from steward.cli.app import app

    run = _run(tmp_path)
    (run / signed.CHECKPOINTS_NAME).unlink()
    res = CliRunner().invoke(app, ["ledger", "sign", "--run-dir", str(run), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["size"] == 2
    assert attest(run, ["evaluate/scorecard.json"])
    (run / "evaluate" / "scorecard.json").write_text("{}")
    bad = CliRunner().invoke(app, ["ledger", "sign", "--run-dir", str(run)])
    assert bad.exit_code != 0 and "not signed" in bad.output and "evaluate/scorecard.json" in bad.output
