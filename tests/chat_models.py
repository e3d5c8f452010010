"""Tiny chat models with a known behaviour, for the generative probes' known-answer tests: the tiny random
Llama trained (answers only) to give one fixed answer to every prompt, and put into a run with the hashes
its train manifest records, so the evaluate stage's hash checks pass."""

from __future__ import annotations

import json
import shutil
from pathlib import Path


def constant_answerer(tiny_chat_dir: Path, out: Path, conversations: list[list[dict[str, str]]], answer: str,
                      steps: int = 120) -> Path:
    """The tiny model after training on ``conversations``, each answered with ``answer`` (and EOS)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_chat_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_chat_dir)
    rows = []
    for messages in conversations:
        prompt = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
        f_ids = tok(prompt + answer + tok.eos_token, add_special_tokens=False)["input_ids"]
        rows.append((f_ids, len(p_ids)))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    torch.manual_seed(0)
    model.train()
    for step in range(steps):
        batch = [rows[(step * 8 + k) % len(rows)] for k in range(8)]
        width = max(len(r) for r, _ in batch)
        ids = torch.full((8, width), tok.pad_token_id or 0)
        labels = torch.full((8, width), -100)
        mask = torch.zeros((8, width), dtype=torch.long)
        for i, (r, n) in enumerate(batch):
            ids[i, :len(r)], mask[i, :len(r)] = torch.tensor(r), 1
            labels[i, n:len(r)] = torch.tensor(r[n:])
        # The LM head only where an answer token is predicted (the train loop keeps the positions from the first
        # answer token on): with SmolLM2's 49k-token vocabulary the head over the long system prompts was nine
        # tenths of this helper's time.
        hidden = model.model(input_ids=ids, attention_mask=mask).last_hidden_state[:, :-1]
        where = labels[:, 1:] != -100
        torch.nn.functional.cross_entropy(model.lm_head(hidden[where]), labels[:, 1:][where]).backward()
        opt.step()
        opt.zero_grad()
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    return out


def install(run_dir: Path, model: Path, *, as_base: bool = False) -> None:
    """Put ``model`` in the run as its fine-tuned model (or as the base it was fine-tuned from), with the
    hashes the train manifest records."""
    from steward.hashing import sha256_file
    from steward.train.models import weights_hash

    manifest = json.loads((run_dir / "train" / "manifest.json").read_text())
    if as_base:
        manifest["base_model"].update(path=str(model), weights_sha256=weights_hash(model))
    else:
        target = run_dir / "train" / "model"
        shutil.rmtree(target)
        shutil.copytree(model, target)
        manifest["model_weights_sha256"] = {"model.safetensors": sha256_file(target / "model.safetensors")}
    (run_dir / "train" / "manifest.json").write_text(json.dumps(manifest))
