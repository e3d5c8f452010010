"""Chat fine-tuning of a causal LM through the train stage's one loop, on a tiny random Llama with SmolLM2's
tokenizer and chat template: every method, the outputs, answer-only loss through the loop, EOS learning,
conversations too long for the context, resume, DP accounting, and the refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from steward.errors import ConfigError, TrainStageError
from steward.hashing import sha256_file
from steward.ledger import verify
from steward.train import run
from tests.train.conftest import copy_run, train_cfg

CHAT = {"batch_size": 8, "max_length": 256, "epochs": 1, "max_train_samples": 40}  # the tiny model is slow: 49k vocab


@pytest.fixture
def chat_run(chat_data_run: Path, tmp_path: Path) -> Path:
    return copy_run(chat_data_run, tmp_path / "run")


def _cfg(run_dir: Path, model: Path, **train: object) -> Any:
    return train_cfg(run_dir, model, **{**CHAT, **train})


@pytest.mark.parametrize("method", ["lora", "full", "prompt"])
def test_each_method_fine_tunes_the_chat_model_and_writes_what_serving_needs(chat_run: Path, tiny_chat_dir: Path,
                                                                             method: str) -> None:
    from transformers import AutoTokenizer, GenerationConfig

    from steward.inference import check_weights, load_pretrained

    result = run(_cfg(chat_run, tiny_chat_dir, method=method, learning_rate=5e-3))
    m, out = result.manifest, result.out_dir
    assert m["task"] == "chat" and m["labels"] == [] and m["method"] == method
    assert m["best_metric"]["name"] == "loss" and m["history"][0]["perplexity"] > 1
    assert m["tokens_per_second"] > 0 and m["max_length"] == 256
    trainable, total = m["parameters"]["trainable"], m["parameters"]["total"]
    if method == "prompt":  # only the virtual tokens: 20 x hidden 64
        assert trainable == 20 * 64
        assert (out / "model" / "prompt_adapter" / "adapter_model.safetensors").is_file()
    elif method == "lora":
        assert 0 < trainable < total / 10 and (out / "adapter" / "adapter_model.safetensors").is_file()
        assert m["lora"]["target_modules"] == sorted(["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                                      "down_proj"])  # the Llama family's, chosen by itself
    else:
        assert trainable == total
    tok = AutoTokenizer.from_pretrained(out / "model")
    assert tok.chat_template and "<|im_start|>" in tok.chat_template
    gen = GenerationConfig.from_pretrained(out / "model")
    assert gen.eos_token_id == tok.eos_token_id and gen.pad_token_id is not None
    assert check_weights(out / "model", m["model_weights_sha256"]) == m["model_weights_sha256"]
    assert ("prompt_adapter/adapter_model.safetensors" in m["model_weights_sha256"]) == (method == "prompt")
    from transformers import AutoModelForCausalLM

    model = load_pretrained(out / "model", AutoModelForCausalLM)
    ids = tok.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)
    with torch.no_grad():
        assert model(**ids).logits.shape[-1] == len(tok)
    assert (out / "quarantine.jsonl").is_file()
    assert verify(chat_run).ok


def test_lora_on_the_last_layers_only_adapts_those(chat_run: Path, tiny_chat_dir: Path) -> None:
    from safetensors.torch import load_file as load

    m = run(_cfg(chat_run, tiny_chat_dir, method="lora", lora={"layers": 1}, max_train_samples=8)).manifest
    adapted = load(chat_run / "train" / "adapter" / "adapter_model.safetensors")
    assert adapted and all(".layers.1." in k for k in adapted)  # the tiny model has layers 0 and 1
    assert m["hyperparameters"]["lora"]["layers"] == 1
    with pytest.raises(ConfigError, match=r"train.lora.layers: got 5, but the model has 2 layers"):
        run(_cfg(chat_run, tiny_chat_dir, method="lora", lora={"layers": 5}))


def test_the_loss_through_the_loop_is_on_the_answers_only(tiny_chat_dir: Path) -> None:
    """Keeping logits only from the batch's first answer token on gives the loss of the full logits; and
    changing a prompt token's label target (not its input) changes nothing."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from steward.train.chat import encode_chat
    from steward.train.data import collate
    from steward.train.loop import model_inputs_for, weighted_loss

    tok = AutoTokenizer.from_pretrained(tiny_chat_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_chat_dir).eval()
    rows = []
    for q, a in [("Where is my order?", "It ships today."), ("Can I pay by card, or only by bank transfer?", "Yes.")]:
        ex = encode_chat(tok, [{"role": "user", "content": q}, {"role": "assistant", "content": a}])
        rows.append({"input_ids": ex.input_ids, "attention_mask": [1] * len(ex.input_ids), "labels": ex.labels,
                     "weight": 1.0})
    batch = collate(tok, "chat")(rows)
    inputs = model_inputs_for("chat")(batch)
    assert 0 < inputs["logits_to_keep"] < batch["input_ids"].shape[1]
    with torch.no_grad():
        kept = model(**inputs).logits
        full = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    assert kept.shape[1] == inputs["logits_to_keep"]
    loss_kept = weighted_loss(kept, batch["labels"], batch["weight"], "chat", False)
    loss_full = weighted_loss(full, batch["labels"], batch["weight"], "chat", False)
    assert float(loss_kept) == pytest.approx(float(loss_full), abs=1e-5)
    # the same by hand: mean over each example's answer tokens of -log p(token | what precedes it)
    logp = full.log_softmax(-1)
    per_ex = []
    for i, labels in enumerate(batch["labels"].tolist()):
        terms = [-float(logp[i, t - 1, y]) for t, y in enumerate(labels) if y != -100]
        per_ex.append(sum(terms) / len(terms))
    assert float(loss_full) == pytest.approx(sum(per_ex) / 2, abs=1e-4)


def test_a_fine_tuned_model_learns_to_stop(chat_run: Path, tiny_chat_dir: Path, tmp_path: Path) -> None:
    """SmolLM2's pad token is its EOS: a collator that masks padding by id would mask every EOS too, and the
    model would never end an answer. Trained through Steward, a tiny random model answers and stops."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    data = chat_run / "data"
    answer = "Done."
    for split in ("train", "validation"):
        import pandas as pd

        frame = pd.read_parquet(data / f"{split}.parquet")
        frame["messages"] = [json.dumps([{"role": "user", "content": f"Please help with case {i}."},
                                         {"role": "assistant", "content": answer}]) for i in range(len(frame))]
        frame.to_parquet(data / f"{split}.parquet")
    _rehash(data)
    out = run(_cfg(chat_run, tiny_chat_dir, method="full", learning_rate=1e-2, epochs=6)).out_dir
    tok = AutoTokenizer.from_pretrained(out / "model")
    model = AutoModelForCausalLM.from_pretrained(out / "model").eval()
    prompt = tok.apply_chat_template([{"role": "user", "content": "Please help with case 999."}],
                                     add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        new = model.generate(**prompt, max_new_tokens=20, do_sample=False)[0, prompt["input_ids"].shape[1]:]
    assert new[-1].item() == tok.eos_token_id and len(new) < 20  # it stopped by itself
    assert tok.decode(new, skip_special_tokens=True).strip() == answer


def _rehash(data: Path) -> None:
    """Record edited split files in the data manifest, as if the data stage had written them."""
    manifest = json.loads((data / "manifest.json").read_text())
    for entry in manifest["splits"].values():
        entry["sha256"] = sha256_file(data.parent / entry["path"])
    (data / "manifest.json").write_text(json.dumps(manifest, indent=2))


def test_conversations_longer_than_the_context_are_set_aside_not_cut(chat_run: Path, tiny_chat_dir: Path) -> None:
    result = run(_cfg(chat_run, tiny_chat_dir, max_length=96))
    aside = [json.loads(line) for line in (result.out_dir / "quarantine.jsonl").read_text().splitlines()]
    assert aside and all(r["reason"] == "context_too_long" and r["tokens"] > 96 for r in aside)
    assert result.manifest["set_aside"] == {"context_too_long": len(aside)}
    n_train = sum(1 for r in aside if r["split"] == "train")

    assert result.manifest["train_rows"] == 40 - n_train  # of the max_train_samples drawn
    with pytest.raises(TrainStageError, match=r"above train.max_length 96.*overlong: quarantine"):
        run(_cfg(chat_run, tiny_chat_dir, max_length=96, overlong="error"))


def test_resume_reaches_the_same_chat_model(chat_data_run: Path, tiny_chat_dir: Path, tmp_path: Path) -> None:
    kw = {"method": "lora", "epochs": 2, "checkpoint_every_steps": 5, "learning_rate": 5e-3, "max_train_samples": 32}
    a = copy_run(chat_data_run, tmp_path / "a")
    full = run(_cfg(a, tiny_chat_dir, **kw)).manifest
    b = copy_run(chat_data_run, tmp_path / "b")
    per_epoch = full["global_steps"] // 2

    class Interrupt(Exception):
        pass

    def kill_at(step: int, loss: float) -> None:
        if step == per_epoch + 3:  # mid-way through epoch 2, after the step-5 checkpoint
            raise Interrupt

    with pytest.raises(Interrupt):
        run(_cfg(b, tiny_chat_dir, **kw), on_step=kill_at)
    resumed = run(_cfg(b, tiny_chat_dir, **kw), resume=True).manifest
    assert resumed["global_steps"] == full["global_steps"]
    for h_full, h_res in zip(full["history"], resumed["history"], strict=True):
        assert h_full["loss"] == pytest.approx(h_res["loss"], abs=1e-5)
    wa, wb = (load_file(r / "train" / "model" / "model.safetensors") for r in (a, b))
    assert wa.keys() == wb.keys() and all(torch.allclose(wa[k], wb[k], atol=1e-5) for k in wa)


def test_dp_lora_on_the_chat_model_spends_what_the_accountant_says(chat_run: Path, tiny_chat_dir: Path) -> None:
    from opacus.accountants import RDPAccountant

    m = run(_cfg(chat_run, tiny_chat_dir, method="lora", epochs=2, batch_size=16, max_train_samples=64,
                 privacy={"enabled": True, "target_epsilon": 8.0, "physical_batch_size": 4})).manifest
    p = m["privacy"]
    steps = sum(h[2] for h in p["history"])
    assert steps == m["global_steps"] and p["delta"] == pytest.approx(1 / m["train_rows"])
    fresh = RDPAccountant()
    fresh.history = [(p["noise_multiplier"], p["sample_rate"], steps)]
    assert p["epsilon"] == pytest.approx(fresh.get_epsilon(delta=p["delta"]), abs=1e-3)
    assert 6.0 < p["epsilon"] <= 8.0
    assert m["history"][-1]["epsilon"] == pytest.approx(p["epsilon"], abs=1e-3)


@pytest.mark.parametrize(("train", "match"), [
    ({"method": "head"}, r"train.method: head .* a chat model has none"),
    ({"augment": {"counterfactual": True}}, r"train.augment: .* chat run"),
    ({"early_stopping": {"metric": "accuracy"}}, r"train.early_stopping.metric: 'accuracy'"),
    ({"method": "prompt", "privacy": {"enabled": True}}, r"method: prompt is not supported"),
])
def test_settings_a_chat_run_cannot_use_are_refused_by_name(chat_run: Path, tiny_chat_dir: Path,
                                                            train: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        run(_cfg(chat_run, tiny_chat_dir, **train))
    assert not (chat_run / "train").exists()


def test_an_encoder_is_refused_as_a_chat_model(chat_run: Path, tiny_model: Path) -> None:
    with pytest.raises(ConfigError, match=r"train.model: .* as a causal language model .*not a causal LM"):
        run(_cfg(chat_run, tiny_model))


def test_prompt_tuning_trains_an_encoder_classifier_too(demo_data_run: Path, tiny_model: Path, tmp_path: Path) -> None:
    from steward.inference import TorchClassifier

    run_dir = copy_run(demo_data_run, tmp_path / "run")
    result = run(train_cfg(run_dir, tiny_model, method="prompt", epochs=1, prompt_tuning={"num_virtual_tokens": 8}))
    m = result.manifest
    n_labels = len(m["labels"])
    assert m["parameters"]["trainable"] == 8 * 32 + (32 * n_labels + n_labels)  # virtual tokens + the head
    model_dir = result.out_dir / "model"
    clf = TorchClassifier.load(model_dir, expected_hashes=m["model_weights_sha256"])
    probs = clf.predict_proba(["where is my parcel", "refund my order"])
    assert probs.shape == (2, n_labels)
    # the learnt prompt is part of the model: without it the predictions differ, and a changed prompt is refused
    from transformers import AutoModelForSequenceClassification

    bare = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    enc = clf.encode(["where is my parcel"])
    with torch.no_grad():
        assert not torch.allclose(bare(**enc).logits.softmax(-1), torch.tensor(probs[:1]), atol=1e-4)
    adapter = model_dir / "prompt_adapter" / "adapter_model.safetensors"
    tensors = load_file(adapter)
    from safetensors.torch import save_file

    save_file({k: v + 1.0 for k, v in tensors.items()}, str(adapter))
    with pytest.raises(ConfigError, match=r"prompt_adapter/adapter_model.safetensors.*do not match"):
        TorchClassifier.load(model_dir, expected_hashes=m["model_weights_sha256"])


def test_dp_on_a_chat_model_takes_the_private_recipe_where_the_user_set_nothing() -> None:
    """LoRA's defaults under DP reached 0.727 on SST-2 as instructions, the private recipe 0.813
    (docs/benchmarks.md): ``privacy.enabled`` alone must get the recipe; what the user set stays."""
    from steward.config import parse_config
    from steward.train.config import CHAT_PRIVATE, private_defaults

    plain = parse_config({"train": {"privacy": {"enabled": True}}}).train
    chosen = private_defaults(plain, "chat", num_layers=30)  # SmolLM2-135M
    assert (chosen.batch_size, chosen.epochs, chosen.lr("chat")) == (256, 6, 5e-3)
    assert chosen.lora.r == 2 and chosen.lora.target_modules == ["q_proj", "v_proj"] and chosen.lora.layers == 12
    mine = parse_config({"train": {"batch_size": 64, "lora": {"r": 8}, "privacy": {"enabled": True}}}).train
    kept = private_defaults(mine, "chat", num_layers=30)
    assert kept.batch_size == 64 and kept.lora.r == 8 and kept.epochs == CHAT_PRIVATE["epochs"]
    assert private_defaults(plain, "chat", num_layers=2).lora.layers == 1  # a tiny model: its top 40 %
    assert private_defaults(plain, "classification") is plain  # classifiers: their own bench-tuned settings
    assert private_defaults(parse_config({"train": {}}).train, "chat").batch_size == 32  # no DP: unchanged
