"""Compressing a fine-tuned chat model (a causal LM): torch dynamic int8, measured beside the original in the
same run on the data stage's held-out conversations — the loss on their answers (and perplexity) and greedy
generation speed in tokens/s — and re-scored in full by the generative scorecard (every probe, against the
base model, with the original's evaluate settings). A candidate is released when it passes every gate the
original passed, its held-out loss per token is at most ``compress.chat.max_loss_increase`` above the
original's, and it generates faster."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from steward.at_rest import read_parquet
from steward.atomic import atomic_dir, write_json
from steward.compress import artifact
from steward.compress.config import CompressRun
from steward.config_base import config_digest
from steward.errors import CompressStageError, ConfigError
from steward.hashing import sha256_file, sha256_tree
from steward.inference import check_weights, load_pretrained, quantize_dynamic
from steward.ledger.store import Ledger, now_iso
from steward.ledger.store import artifact as ledger_artifact
from steward.provenance import stamp
from steward.records import ChosenArtifact, DataManifest, Scorecard, TrainManifest
from steward.train.config import TrainConfig
from steward.train.data import encode_conversations
from steward.train.loop import evaluate_lm

STAGE = "compress"
ORIGINAL = ChosenArtifact.ORIGINAL
METHODS = ("dynamic_int8",)  # what a causal LM can be compressed with so far


def run_chat(cfg: CompressRun, manifest: TrainManifest, *, progress: bool = False) -> Any:
    """Compress ``RUN_DIR/train/model`` (a chat model); write ``RUN_DIR/compress/`` and a ledger event."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from steward.compress.stage import CompressResult

    ccfg, run_dir = cfg.compress, Path(cfg.run_dir)
    methods = [m for m in ccfg.methods if m in METHODS]
    if not methods:
        raise ConfigError(f"compress.methods: {list(ccfg.methods)} has no method for a chat model yet. Fix: "
                          f"include {', '.join(METHODS)}")
    started_at, t_start = now_iso(), time.perf_counter()
    if ccfg.threads:
        import torch

        torch.set_num_threads(ccfg.threads)
    parent_dir = run_dir / "train" / "model"
    check_weights(parent_dir, manifest.model_weights_sha256 or None)
    parent_hash = sha256_tree(parent_dir)
    tokenizer = AutoTokenizer.from_pretrained(parent_dir)
    required = _required_gates(cfg, run_dir) if ccfg.chat.rescore else None
    examples, prompts, test_ref = _held_out(run_dir, manifest, tokenizer, ccfg.chat)
    with atomic_dir(run_dir / STAGE) as gen:
        original = load_pretrained(parent_dir, AutoModelForCausalLM)
        entries = [_measure(ORIGINAL, "none", "hf", original, tokenizer, examples, prompts, ccfg.chat,
                            "train/model", artifact.size_bytes(parent_dir))]
        for method in methods:
            out = gen / "candidates" / method
            out.mkdir(parents=True)
            t0 = time.perf_counter()
            model = _int8(parent_dir, out, parent_hash, ccfg)
            entry = _measure(method, method, "torch_int8", model, tokenizer, examples, prompts, ccfg.chat,
                             f"{STAGE}/candidates/{method}", artifact.size_bytes(out))
            entry["build_seconds"] = round(time.perf_counter() - t0, 2)
            if required is not None:
                entry.update(_rescore(cfg, model, tokenizer, out, method, required, progress))
            entry["sha256"] = sha256_tree(out)
            entries.append(entry)
        chosen = _choose(entries, ccfg.chat.max_loss_increase)
        summary = {"task": "chat", "parent": {"path": "train/model", "sha256": parent_hash},
                   "held_out": {"split": "test", **test_ref, "conversations": len(examples)},
                   "chosen": chosen["name"], "candidates": entries,
                   "rule": ("every gate the original passed, " if required is not None else "")
                           + f"held-out token loss at most {ccfg.chat.max_loss_increase} above the original's, "
                             f"and more tokens/s",
                   "gates_required": sorted(required) if required is not None else None, "seconds": round(time.perf_counter() - t_start, 2),
                   "config_digest": config_digest(ccfg), "provenance": stamp()}
        write_json(gen / "pareto.json", summary)
        ChosenArtifact(name=chosen["name"], path=chosen["path"], format=chosen["format"],
                       sha256=chosen.get("sha256", parent_hash), parent_sha256=parent_hash).write(gen / "chosen.json")
    _record(run_dir, ccfg, chosen, parent_hash, test_ref["path"], started_at, summary["seconds"],
            rescored=required is not None)
    return CompressResult(entries, chosen["name"], run_dir / STAGE)


def _required_gates(cfg: CompressRun, run_dir: Path) -> set[str]:
    """The gates the original's generative scorecard passed — each candidate must pass them too — checked to
    have been made with the evaluate settings in force, so candidates are judged on equal terms."""
    path = run_dir / "evaluate" / "scorecard.json"
    if not path.is_file():
        raise CompressStageError(f"no scorecard in {run_dir / 'evaluate'}: each compressed chat model is re-scored "
                                 f"against the original's gates. Fix: run `steward evaluate` for this run first, or "
                                 f"set compress.chat.rescore: false to judge by held-out loss alone")
    sc = Scorecard.read(path)
    if sc.task != "chat":
        raise CompressStageError(f"{path} is not a chat model's scorecard; run `steward evaluate` for this run again")
    if sc.config_digest != config_digest(cfg.evaluate):
        raise CompressStageError(f"the evaluate settings differ from the ones the original's scorecard was made with "
                                 f"({path}); candidates must be judged on equal terms. Fix: re-run `steward evaluate` "
                                 f"with this config, then `steward compress`")
    return {g["gate"] for g in sc.gates if g.get("passed")}


def _rescore(cfg: CompressRun, model: Any, tokenizer: Any, out: Path, method: str, required: set[str],
             progress: bool) -> dict[str, Any]:
    """The candidate's generative scorecard (written beside it) and the required gates it fails."""
    from steward.evaluate.generative import ChatLM
    from steward.evaluate.stage import score

    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    lm = ChatLM(model, tokenizer, "fine-tuned", out, {})
    res = score(cfg, lm, out, progress=progress, description=f"score {method}")
    res.scorecard["model"]["path"] = f"{STAGE}/candidates/{method}"  # where it lands, not the build folder
    Scorecard.model_validate(res.scorecard).write(out / "scorecard.json")
    passed = {g.gate for g in res.gates if g.passed}
    return {"scorecard": f"{STAGE}/candidates/{method}/scorecard.json", "gates_failed": sorted(required - passed),
            "gates": [g.to_dict() for g in res.gates]}


def _held_out(run_dir: Path, manifest: TrainManifest, tokenizer: Any, settings: Any
              ) -> tuple[list[dict[str, Any]], list[list[dict[str, str]]], dict[str, str]]:
    """The test split's conversations (checked against the data manifest), encoded as in training."""
    data = DataManifest.read(run_dir / "data" / "manifest.json")
    ref = data.split("test")
    if ref is None:
        raise CompressStageError("compress: the data stage wrote no test split, and a chat model is measured on "
                                 "held-out conversations. Fix: set data.split.test > 0 and rerun `steward data`")
    path = run_dir / ref.path
    if sha256_file(path) != ref.sha256:
        raise CompressStageError(f"{ref.path} changed since the data stage wrote it (sha256 mismatch); rerun "
                                 f"`steward data`")
    frame = read_parquet(path)
    if settings.max_rows is not None and len(frame) > settings.max_rows:
        frame = frame.sample(n=settings.max_rows, random_state=0).reset_index(drop=True)
    tcfg = TrainConfig.model_validate({**manifest.hyperparameters, "overlong": "quarantine"})
    examples, _ = encode_conversations(frame, tokenizer, tcfg, "test")
    prompts = []
    for messages in frame["messages"].head(settings.prompts):
        turns = json.loads(messages)
        first_answer = next(i for i, m in enumerate(turns) if m["role"] == "assistant")
        prompts.append(turns[:first_answer])
    return examples, prompts, {"path": ref.path, "sha256": ref.sha256}


def _int8(parent_dir: Path, out: Path, parent_hash: str, ccfg: Any) -> Any:
    """The model with its linear layers in dynamic int8, written as safetensors beside its tokenizer."""
    import shutil

    from transformers import AutoModelForCausalLM

    model = quantize_dynamic(load_pretrained(parent_dir, AutoModelForCausalLM))
    for p in parent_dir.iterdir():
        if p.is_file() and not p.name.endswith(".safetensors"):
            shutil.copy2(p, out / p.name)  # config, generation config, tokenizer and chat template
    artifact.save_int8(model, out)
    artifact.write_meta(out, method="dynamic_int8", format="torch_int8", task="chat",
                        parent={"path": "train/model", "sha256": parent_hash}, config=ccfg.model_dump(mode="json"),
                        note="linear layers int8 (torch dynamic quantisation)")
    return artifact.load_int8(out, AutoModelForCausalLM)  # measured as it loads from disk, not as built


def _measure(name: str, method: str, fmt: str, model: Any, tokenizer: Any, examples: list[dict[str, Any]],
             prompts: list[list[dict[str, str]]], settings: Any, path: str, size: int) -> dict[str, Any]:
    """Held-out loss and perplexity, and greedy tokens/s, of one model."""
    figures = evaluate_lm(model, examples, tokenizer, batch_size=8)
    return {"name": name, "method": method, "format": fmt, "path": path, "size_bytes": size,
            "held_out_loss": round(figures["token_loss"], 5), "perplexity": round(figures["perplexity"], 4),
            "tokens_per_second": round(_generation_speed(model, tokenizer, prompts, settings.new_tokens), 2)}


def _generation_speed(model: Any, tokenizer: Any, prompts: list[list[dict[str, str]]], new_tokens: int) -> float:
    """Greedy tokens per second over the prompts, one at a time, exactly ``new_tokens`` each (EOS ignored, so
    every model does the same work)."""
    import torch

    total, spent = 0, 0.0
    for messages in prompts:
        enc = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                            return_dict=True)
        with torch.inference_mode():
            t0 = time.perf_counter()
            out = model.generate(**enc, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id)
            spent += time.perf_counter() - t0
        total += out.shape[1] - enc["input_ids"].shape[1]
    return total / spent if spent else 0.0


def _choose(entries: list[dict[str, Any]], max_increase: float) -> dict[str, Any]:
    """The fastest candidate within the loss allowance; each entry says why it was or was not released."""
    original = entries[0]
    for e in entries[1:]:
        worse = e["held_out_loss"] - original["held_out_loss"]
        e["loss_increase"] = round(worse, 5)
        failed = e.get("gates_failed") or []
        e["rejected"] = (f"fails gates the original passed: {', '.join(failed)}" if failed else
                         f"held-out loss +{worse:.4f} > {max_increase}" if worse > max_increase else
                         "not faster than the original" if e["tokens_per_second"] <= original["tokens_per_second"]
                         else None)
    original["rejected"] = None
    ok = [e for e in entries[1:] if not e["rejected"]]
    chosen = max(ok, key=lambda e: e["tokens_per_second"]) if ok else original
    for e in entries:
        e["chosen"] = e is chosen
    return chosen


def _record(run_dir: Path, ccfg: Any, chosen: dict[str, Any], parent_hash: str, held_out: str, started_at: str,
            seconds: float, *, rescored: bool) -> None:
    out_dir = run_dir / STAGE
    outputs = [ledger_artifact(out_dir / n, run_dir, n.removesuffix(".json")) for n in ("pareto.json", "chosen.json")]
    outputs.append(ledger_artifact(run_dir / chosen["path"], run_dir, "chosen_model"))
    Ledger(run_dir).append(
        stage=STAGE, started_at=started_at, config_digest=config_digest(ccfg),
        inputs=[ledger_artifact(run_dir / "train" / "model", run_dir, "parent_model"),
                ledger_artifact(run_dir / held_out, run_dir, "held_out")]
        + ([ledger_artifact(run_dir / "evaluate" / "scorecard.json", run_dir, "parent_scorecard")] if rescored else []),
        outputs=outputs, summary={"task": "chat", "chosen": chosen["name"], "parent_sha256": parent_hash,
                                  "seconds": seconds})
