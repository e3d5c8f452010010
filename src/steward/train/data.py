"""Read the data stage's outputs and turn them into tokenised examples for the model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from steward.at_rest import read_parquet
from steward.errors import ConfigError, TrainStageError
from steward.hashing import sha256_file
from steward.records import DataManifest
from steward.train.chat import IGNORE, encode_chat
from steward.train.config import TrainConfig

IGNORE_INDEX = IGNORE  # label for sub-word pieces, special tokens and prompts (ignored by the loss)
TOKEN_TASKS = ("ner", "chat")  # a label per token (a tag; the next token of an answer), not one per text


@dataclass(frozen=True)
class TrainData:
    task: str  # "classification" | "ner" | "chat"
    multi_label: bool
    labels: list[str]
    train: pd.DataFrame
    validation: pd.DataFrame
    inputs: dict[str, tuple[Path, str]]  # split -> (path, sha256)


def load_data_stage(run_dir: Path, cfg: TrainConfig, *, agreed_labels: list[str] | None = None) -> TrainData:
    """Load ``RUN_DIR/data``; check the files still match the manifest and the label set agrees.

    ``agreed_labels``: a label set decided elsewhere (a federation's) that this data holds a share of — its
    labels must lie within it, it may lack some (one site may see a single label), and the model's head is
    the agreed set in its order."""
    manifest_path = run_dir / "data" / "manifest.json"
    if not manifest_path.is_file():
        raise TrainStageError(f"no data-stage outputs in {run_dir / 'data'}; run `steward data` for this run first")
    manifest = DataManifest.read(manifest_path)
    frames, inputs = _read_splits(run_dir, manifest, manifest_path)
    task = manifest.task
    multi = cfg.multi_label_separator is not None and task not in ("ner", "chat")
    if agreed_labels is not None:
        labels = _within(manifest, agreed_labels)
    else:
        labels = [] if task == "chat" else _labels(manifest, cfg, task, multi)
    train = frames["train"]
    if cfg.max_train_samples is not None and len(train) > cfg.max_train_samples:
        train = train.sample(n=cfg.max_train_samples, random_state=cfg.seed).reset_index(drop=True)
    val = frames["validation"]
    if cfg.max_eval_samples is not None and len(val) > cfg.max_eval_samples:
        val = val.sample(n=cfg.max_eval_samples, random_state=cfg.seed).reset_index(drop=True)
    if train.empty or val.empty:
        raise TrainStageError(f"train has {len(train)} rows and validation {len(val)}; both must be non-empty "
                              f"(set data.split.validation > 0)")
    return TrainData(task, multi, labels, train, val, inputs)


def _read_splits(run_dir: Path, manifest: DataManifest, manifest_path: Path
                 ) -> tuple[dict[str, pd.DataFrame], dict[str, tuple[Path, str]]]:
    """The train and validation splits, each checked against the sha256 the data stage recorded."""
    inputs: dict[str, tuple[Path, str]] = {}
    frames: dict[str, pd.DataFrame] = {}
    for split in ("train", "validation"):
        ref = manifest.split(split)
        if ref is None:
            raise TrainStageError(f"{manifest_path} names no {split} split; rerun `steward data` for this run")
        path = run_dir / ref.path
        digest = sha256_file(path)
        if digest != ref.sha256:
            raise TrainStageError(f"{ref.path} changed since the data stage wrote it (sha256 mismatch); "
                                  f"rerun `steward data` or run `steward ledger verify` to see what happened")
        inputs[split] = (path, digest)
        frames[split] = read_parquet(path)
    return frames, inputs


def _labels(manifest: DataManifest, cfg: TrainConfig, task: str, multi: bool) -> list[str]:
    """The label set of a classifier or tagger, checked against ``train.labels`` when that is given."""
    if task == "ner":
        labels = sorted(set(manifest.labels) | {"O"}, key=lambda t: (t != "O", t[2:], t))
    elif multi:
        sep = cfg.multi_label_separator
        labels = sorted({part.strip() for lbl in manifest.labels for part in lbl.split(sep) if part.strip()})
    else:
        labels = list(manifest.labels)
    if cfg.labels is not None:
        declared = sorted(cfg.labels) if task != "ner" else sorted(set(cfg.labels) | {"O"})
        if declared != sorted(labels):
            missing, extra = sorted(set(labels) - set(declared)), sorted(set(declared) - set(labels))
            raise ConfigError(f"train.labels disagrees with the data stage: data has {missing or 'no'} labels "
                              f"not in train.labels, train.labels has {extra or 'none'} absent from the data; "
                              f"fix train.labels or rerun `steward data` with input.labels")
    if len(labels) < 2:
        raise TrainStageError(f"the data has {len(labels)} label(s) {labels}; classification needs at least two")
    return labels


def _within(manifest: DataManifest, agreed: list[str]) -> list[str]:
    """The agreed label set, once the data's labels are checked to lie within it."""
    extra = sorted(set(manifest.labels) - set(agreed))
    if extra:
        raise ConfigError(f"the data has labels {extra} outside the agreed set {agreed}. Fix: map them onto the "
                          f"agreed labels in this data, or add them to the agreed set (train.labels) everywhere")
    return list(agreed)


def _weights(frame: pd.DataFrame, cfg: TrainConfig) -> np.ndarray:
    return (frame["sample_weight"].to_numpy(dtype=np.float32) if cfg.use_sample_weights
            and "sample_weight" in frame else np.ones(len(frame), dtype=np.float32))


def encode_conversations(frame: pd.DataFrame, tokenizer: Any, cfg: TrainConfig, split: str
                         ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Conversations through the model's chat template, answer-only labels (chat.py); and the rows set aside
    because they do not fit ``train.max_length`` — never cut, since a cut answer teaches the model not to stop."""
    import json

    limit, weights = cfg.length("chat"), _weights(frame, cfg)
    out: list[dict[str, Any]] = []
    set_aside: list[dict[str, Any]] = []
    for i, (row_id, messages) in enumerate(zip(frame["row_id"], frame["messages"], strict=True)):
        ex = encode_chat(tokenizer, json.loads(messages))
        if len(ex.input_ids) > limit:
            if cfg.overlong == "error":
                raise TrainStageError(f"{split} row {row_id}: the conversation is {len(ex.input_ids)} tokens after "
                                      f"the chat template, above train.max_length {limit}. Fix: raise "
                                      f"train.max_length, or set train.overlong: quarantine to set such rows aside")
            set_aside.append({"row_id": str(row_id), "split": split, "reason": "context_too_long",
                              "tokens": len(ex.input_ids), "max_length": limit})
            continue
        out.append({"input_ids": ex.input_ids, "attention_mask": [1] * len(ex.input_ids), "labels": ex.labels,
                    "weight": float(weights[i])})
    if not out:
        raise TrainStageError(f"every {split} conversation is longer than train.max_length {limit} tokens after the "
                              f"chat template; raise train.max_length")
    return out, set_aside


def encode(frame: pd.DataFrame, data: TrainData, tokenizer: Any, cfg: TrainConfig) -> list[dict[str, Any]]:
    """Tokenise rows into model inputs plus ``labels`` and ``weight``."""
    label_index = {lbl: i for i, lbl in enumerate(data.labels)}
    weights = _weights(frame, cfg)
    out: list[dict[str, Any]] = []
    if data.task == "ner":
        enc = tokenizer([list(t) for t in frame["tokens"]], is_split_into_words=True, truncation=True,
                        max_length=cfg.length(data.task))
        for i, tags in enumerate(frame["tags"]):
            word_ids = enc.word_ids(i)
            aligned, prev = [], None
            for w in word_ids:
                # Only a word's first sub-token carries its tag; the rest are ignored by loss and metrics.
                aligned.append(IGNORE_INDEX if w is None or w == prev else label_index[tags[w]])
                prev = w
            out.append({"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i],
                        "labels": aligned, "weight": float(weights[i])})
        return out
    enc = tokenizer(frame["text"].tolist(), truncation=True, max_length=cfg.length(data.task))
    for i, lbl in enumerate(frame["label"].astype(str)):
        if data.multi_label:
            target = [0.0] * len(data.labels)
            for part in lbl.split(cfg.multi_label_separator):
                if part.strip():
                    target[label_index[part.strip()]] = 1.0
        else:
            if lbl not in label_index:
                raise TrainStageError(f"label {lbl!r} in the data is not in the label set {data.labels}")
            target = label_index[lbl]  # type: ignore[assignment]
        out.append({"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i],
                    "labels": target, "weight": float(weights[i])})
    return out


def collate(tokenizer: Any, task: str):  # type: ignore[no-untyped-def]
    """Pad a batch dynamically (to its longest row): short texts do not pay for ``max_length``."""
    import torch

    def fn(batch: list[dict[str, Any]]) -> dict[str, Any]:
        width = max(len(b["input_ids"]) for b in batch)
        pad = tokenizer.pad_token_id or 0
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for i, b in enumerate(batch):
            n = len(b["input_ids"])
            ids[i, :n] = torch.tensor(b["input_ids"])
            mask[i, :n] = 1
        if task in TOKEN_TASKS:
            labels = torch.full((len(batch), width), IGNORE_INDEX, dtype=torch.long)
            for i, b in enumerate(batch):
                labels[i, : len(b["labels"])] = torch.tensor(b["labels"])
        elif isinstance(batch[0]["labels"], list):
            labels = torch.tensor([b["labels"] for b in batch], dtype=torch.float32)
        else:
            labels = torch.tensor([b["labels"] for b in batch], dtype=torch.long)
        weight = torch.tensor([b["weight"] for b in batch], dtype=torch.float32)
        return {"input_ids": ids, "attention_mask": mask, "labels": labels, "weight": weight}

    return fn
