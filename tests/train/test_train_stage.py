"""The train stage on a tiny randomly initialised BERT: methods, outputs, resume, bad inputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from steward.errors import ConfigError, TrainStageError
from steward.ledger import verify
from steward.train import run
from tests.train.conftest import copy_run, train_cfg


@pytest.fixture
def run_dir(demo_data_run: Path, tmp_path: Path) -> Path:
    return copy_run(demo_data_run, tmp_path / "run")


@pytest.mark.parametrize("method", ["lora", "full", "head"])
def test_each_method_trains_and_writes_a_loadable_model(run_dir: Path, tiny_model: Path, method: str) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    result = run(train_cfg(run_dir, tiny_model, method=method, epochs=1))
    m = result.manifest
    assert m["method"] == method and m["epochs_run"] == 1
    assert m["base_model"]["weights_sha256"] and m["hyperparameters"]["method"] == method
    trainable, total = m["parameters"]["trainable"], m["parameters"]["total"]
    assert 0 < trainable <= total
    if method == "full":
        assert trainable == total
    if method == "head":
        assert trainable == 32 * len(m["labels"]) + len(m["labels"])  # hidden x labels + bias
    out = result.out_dir
    assert (out / "adapter" / "adapter_model.safetensors").is_file() == (method == "lora")
    assert not list((out / "model").glob("*.bin"))  # safetensors only
    model = AutoModelForSequenceClassification.from_pretrained(out / "model")
    tok = AutoTokenizer.from_pretrained(out / "model")
    logits = model(**tok(["where is my parcel"], return_tensors="pt")).logits
    assert logits.shape == (1, len(m["labels"]))
    assert model.config.id2label[0] == m["labels"][0]
    assert json.loads((out / "label_map.json").read_text())["labels"] == m["labels"]
    assert verify(run_dir).ok


def test_lora_merged_model_equals_base_plus_adapter(run_dir: Path, tiny_model: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    out = run(train_cfg(run_dir, tiny_model, method="lora", epochs=1)).out_dir
    labels = json.loads((out / "label_map.json").read_text())["labels"]
    merged = AutoModelForSequenceClassification.from_pretrained(out / "model").eval()
    base = AutoModelForSequenceClassification.from_pretrained(tiny_model, num_labels=len(labels))
    with_adapter = PeftModel.from_pretrained(base, out / "adapter").eval()
    x = AutoTokenizer.from_pretrained(out / "model")(["refund my order please"], return_tensors="pt")
    with torch.no_grad():
        assert torch.allclose(merged(**x).logits, with_adapter(**x).logits, atol=1e-5)


def test_resume_reaches_the_same_result_as_an_uninterrupted_run(demo_data_run: Path, tiny_model: Path,
                                                                tmp_path: Path) -> None:
    kw = {"method": "full", "epochs": 2, "checkpoint_every_steps": 5, "learning_rate": 1e-3}
    a = copy_run(demo_data_run, tmp_path / "a")
    full = run(train_cfg(a, tiny_model, **kw)).manifest
    b = copy_run(demo_data_run, tmp_path / "b")
    steps_per_epoch = full["global_steps"] // 2

    class Interrupt(Exception):
        pass

    def kill_at(step: int, loss: float) -> None:
        if step == steps_per_epoch + 7:  # mid-way through epoch 2, after the step-5 multiple checkpoint
            raise Interrupt

    with pytest.raises(Interrupt):
        run(train_cfg(b, tiny_model, **kw), on_step=kill_at)
    assert not (b / "train").exists()  # no half-written outputs
    resumed = run(train_cfg(b, tiny_model, **kw), resume=True).manifest
    assert resumed["global_steps"] == full["global_steps"]
    for h_full, h_res in zip(full["history"], resumed["history"], strict=True):
        assert h_full["loss"] == pytest.approx(h_res["loss"], abs=1e-5)
        assert h_full["macro_f1"] == pytest.approx(h_res["macro_f1"])
    wa = load_file(a / "train" / "model" / "model.safetensors")
    wb = load_file(b / "train" / "model" / "model.safetensors")
    assert wa.keys() == wb.keys()
    assert all(torch.allclose(wa[k], wb[k], atol=1e-5) for k in wa)


def test_resume_with_a_different_config_is_refused_and_keeps_the_checkpoint(run_dir: Path, tiny_model: Path) -> None:
    run(train_cfg(run_dir, tiny_model, epochs=1))
    ckpt = run_dir / "train_checkpoints" / "last" / "model.safetensors"
    before = ckpt.read_bytes()
    # A LoRA checkpoint holds only the trainable tensors (adapters and head), not the frozen base.
    saved = load_file(ckpt)
    assert saved and all("lora_" in k or "classifier" in k for k in saved)
    assert ckpt.stat().st_size < 0.2 * (run_dir / "train" / "model" / "model.safetensors").stat().st_size
    with pytest.raises(ConfigError, match=r"different train config \(changed: learning_rate\)"):
        run(train_cfg(run_dir, tiny_model, epochs=1, learning_rate=0.5), resume=True)
    assert ckpt.read_bytes() == before
    with pytest.raises(TrainStageError, match="no checkpoint"):
        shutil.rmtree(run_dir / "train_checkpoints")
        run(train_cfg(run_dir, tiny_model, epochs=1), resume=True)


def test_early_stopping_keeps_the_best_epoch(run_dir: Path, tiny_model: Path) -> None:
    # No epoch can beat the first by min_delta = 1.0, so patience 1 stops after epoch 2 and keeps epoch 1.
    m = run(train_cfg(run_dir, tiny_model, method="full", epochs=5,
                      early_stopping={"metric": "macro_f1", "patience": 1, "min_delta": 1.0})).manifest
    assert m["stopped_early"] and m["epochs_run"] == 2
    assert m["best_metric"]["epoch"] == 1
    assert m["best_metric"]["value"] == pytest.approx(m["history"][0]["macro_f1"], abs=1e-6)
    best = load_file(run_dir / "train_checkpoints" / "best" / "model.safetensors")
    final = load_file(run_dir / "train" / "model" / "model.safetensors")
    assert torch.allclose(best["classifier.weight"], final["classifier.weight"])  # epoch 1's weights shipped


def test_sample_weights_change_training(run_dir: Path, tiny_model: Path, tmp_path: Path) -> None:
    import pandas as pd

    train_file = (run_dir / "data" / "train.parquet")
    df = pd.read_parquet(train_file)
    assert df["sample_weight"].std() > 0  # the data stage weighted label x gender cells
    weighted = run(train_cfg(run_dir, tiny_model, method="full", epochs=1)).manifest
    unweighted = run(train_cfg(run_dir, tiny_model, method="full", epochs=1, use_sample_weights=False)).manifest
    assert weighted["history"][0]["loss"] != unweighted["history"][0]["loss"]


def test_mlflow_tracks_params_and_metrics(run_dir: Path, tiny_model: Path) -> None:
    m = run(train_cfg(run_dir, tiny_model, epochs=1, mlflow=True)).manifest
    assert m["mlflow_run_id"]
    runs = list((run_dir / "mlruns").rglob(m["mlflow_run_id"]))
    assert runs
    metric_files = {p.name for p in runs[0].rglob("metrics/*")}
    params = {p.name for p in runs[0].rglob("params/*")}
    assert {"macro_f1", "loss", "accuracy"} <= metric_files and {"method", "lora.r", "epochs"} <= params


def test_bad_inputs_are_clear(run_dir: Path, tiny_model: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no model directory at"):
        run(train_cfg(run_dir, tmp_path / "nope" / "model"))
    pickled = tmp_path / "pickled"
    shutil.copytree(tiny_model, pickled)
    from safetensors.torch import load_file as lf

    torch.save(lf(pickled / "model.safetensors"), pickled / "pytorch_model.bin")
    (pickled / "model.safetensors").unlink()
    with pytest.raises(ConfigError, match=r"only pickle weights.*--trust-pickle"):
        run(train_cfg(run_dir, pickled))
    with pytest.raises(ConfigError, match=r"train.labels disagrees with the data stage"):
        run(train_cfg(run_dir, tiny_model, labels=["billing", "refund"]))
    with pytest.raises(ConfigError, match="target_modules: \\['q_proj'\\] not found"):
        run(train_cfg(run_dir, tiny_model, lora={"target_modules": ["q_proj"]}))
    small_vocab = tmp_path / "small_vocab"
    from transformers import BertConfig, BertModel

    BertModel(BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64)).save_pretrained(small_vocab)
    with pytest.raises(ConfigError, match="do not belong together"):
        run(train_cfg(run_dir, small_vocab, tokenizer=str(tiny_model)))
    with pytest.raises(TrainStageError, match="run `steward data`"):
        run(train_cfg(tmp_path / "empty_run", tiny_model))


def test_trust_pickle_loads_a_pickle_checkpoint(run_dir: Path, tiny_model: Path, tmp_path: Path) -> None:
    pickled = tmp_path / "pickled"
    shutil.copytree(tiny_model, pickled)
    torch.save(load_file(pickled / "model.safetensors"), pickled / "pytorch_model.bin")
    (pickled / "model.safetensors").unlink()
    m = run(train_cfg(run_dir, pickled, epochs=1, trust_pickle=True)).manifest
    assert m["epochs_run"] == 1
