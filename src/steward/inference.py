"""Load a trained model folder and run it: the one inference path the evaluate, compress and serve stages share.

The folder is the train stage's ``RUN_DIR/train/model`` (Hugging Face format, safetensors). Loading refuses
pickle weights and, given the manifest's hashes, weights that changed since training.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from steward.errors import ConfigError
from steward.hashing import sha256_file


class Predictor(Protocol):
    """What a probe needs from a classifier: class probabilities for texts, in ``labels`` order."""

    labels: list[str]

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray: ...


def check_weights(model_dir: Path, expected: dict[str, str] | None) -> None:
    """Refuse a model folder whose safetensors differ from the hashes its manifest recorded."""
    weights = sorted(model_dir.glob("*.safetensors"))
    if not weights:
        pickles = sorted(p.name for p in model_dir.glob("*.bin")) + sorted(p.name for p in model_dir.glob("*.pt"))
        raise ConfigError(f"{model_dir}: no .safetensors weights (found {pickles or 'nothing'}); Steward loads "
                          f"safetensors only. Re-save the model with save_pretrained(safe_serialization=True)")
    if expected is None:
        return
    actual = {w.name: sha256_file(w) for w in weights}
    if actual != expected:
        changed = sorted(n for n in set(actual) | set(expected) if actual.get(n) != expected.get(n))
        raise ConfigError(f"{model_dir}: weights {changed} do not match the hashes in the train manifest; the "
                          f"model was modified after training. Re-run `steward train` or restore the files")


@dataclass
class TorchClassifier:
    """A sequence classifier on CPU. Batches are sorted by length so short texts pay for little padding."""

    model: Any
    tokenizer: Any
    labels: list[str]
    multi_label: bool = False
    max_length: int = 128
    batch_size: int = 64
    calls: int = field(default=0, init=False)  # texts scored so far (attack query budgets count these)

    @classmethod
    def load(cls, model_dir: Path, *, expected_hashes: dict[str, str] | None = None, max_length: int = 128,
             batch_size: int = 64) -> TorchClassifier:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        check_weights(model_dir, expected_hashes)
        model = AutoModelForSequenceClassification.from_pretrained(model_dir, use_safetensors=True).eval()
        tok = AutoTokenizer.from_pretrained(model_dir)
        id2label = model.config.id2label
        labels = [str(id2label[i]) for i in range(len(id2label))]
        multi = model.config.problem_type == "multi_label_classification"
        return cls(model, tok, labels, multi, max_length, batch_size)

    def encode(self, texts: Sequence[str]) -> Any:
        return self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_length,
                              return_tensors="pt")

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        return self._forward(texts, embeddings=False)[0]

    def _forward(self, texts: Sequence[str], embeddings: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """Logits and, when asked, each text's mean-pooled last hidden state (the model's own view of it)."""
        import torch

        texts = list(texts)
        self.calls += len(texts)
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        emb = np.zeros((len(texts), self.model.config.hidden_size), dtype=np.float32) if embeddings else None
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        with torch.inference_mode():
            for k in range(0, len(order), self.batch_size):
                idx = order[k:k + self.batch_size]
                enc = self.encode([texts[i] for i in idx])
                res = self.model(**enc, output_hidden_states=embeddings)
                out[idx] = res.logits.float().numpy()
                if emb is not None:
                    mask = enc["attention_mask"].unsqueeze(-1).to(res.hidden_states[-1].dtype)
                    emb[idx] = ((res.hidden_states[-1] * mask).sum(1) / mask.sum(1).clamp(min=1)).float().numpy()
        return out, emb

    def _proba(self, z: np.ndarray) -> np.ndarray:
        if self.multi_label:
            return 1.0 / (1.0 + np.exp(-z))
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return self._proba(self.logits(texts))

    def predict_with_embeddings(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities and embeddings from one forward pass (the service's drift monitor uses both)."""
        z, emb = self._forward(texts, embeddings=True)
        assert emb is not None
        return self._proba(z), emb


def per_example_loss(proba: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Cross-entropy of each row's true class (the membership-inference signal)."""
    return -np.log(np.clip(proba[np.arange(len(y)), y], 1e-12, 1.0))


@dataclass
class TorchTagger:
    """A token classifier (NER): one tag per input word, read from the word's first sub-token."""

    model: Any
    tokenizer: Any
    labels: list[str]
    max_length: int = 128
    batch_size: int = 32

    @classmethod
    def load(cls, model_dir: Path, *, expected_hashes: dict[str, str] | None = None, max_length: int = 128,
             batch_size: int = 32) -> TorchTagger:
        from transformers import AutoModelForTokenClassification, AutoTokenizer

        check_weights(model_dir, expected_hashes)
        model = AutoModelForTokenClassification.from_pretrained(model_dir, use_safetensors=True).eval()
        tok = AutoTokenizer.from_pretrained(model_dir)
        labels = [str(model.config.id2label[i]) for i in range(len(model.config.id2label))]
        return cls(model, tok, labels, max_length, batch_size)

    def predict_tags(self, sentences: Sequence[Sequence[str]]) -> list[list[str]]:
        """Tags per word; words cut off by ``max_length`` get "O" (stated in the docs, counted as misses)."""
        import torch

        out: list[list[str]] = []
        with torch.inference_mode():
            for k in range(0, len(sentences), self.batch_size):
                part = [list(s) for s in sentences[k:k + self.batch_size]]
                enc = self.tokenizer(part, is_split_into_words=True, truncation=True, max_length=self.max_length,
                                     padding=True, return_tensors="pt")
                pred = self.model(**enc).logits.argmax(-1).tolist()
                for i, words in enumerate(part):
                    tags = ["O"] * len(words)
                    prev = None
                    for pos, w in enumerate(enc.word_ids(i)):
                        if w is not None and w != prev:
                            tags[w] = self.labels[pred[i][pos]]
                        prev = w
                    out.append(tags)
        return out
