"""Load a trained model folder and run it: the one inference path the evaluate, compress and serve stages share.

The folder is the train stage's ``RUN_DIR/train/model`` (Hugging Face format, safetensors). Loading refuses
pickle weights and, given the manifest's hashes, weights that changed since training.
"""

from __future__ import annotations

import threading
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


# A prompt-tuned model's learnt virtual tokens (a peft adapter), kept inside its model folder: they cannot be
# merged into the weights, so every loader applies them (load_pretrained) and every hash check covers them.
PROMPT_ADAPTER_DIR = "prompt_adapter"


def weight_files(model_dir: Path) -> dict[str, Path]:
    """The weight files of a model folder by the name its manifest records them under: its safetensors, and a
    prompt adapter's as ``prompt_adapter/<file>``."""
    files = {w.name: w for w in sorted(model_dir.glob("*.safetensors"))}
    files.update({f"{PROMPT_ADAPTER_DIR}/{w.name}": w for w in sorted((model_dir / PROMPT_ADAPTER_DIR).glob("*.safetensors"))})
    return files


def load_pretrained(model_dir: Path, auto_class: Any) -> Any:
    """``auto_class.from_pretrained`` (safetensors only), in eval mode, with the folder's prompt adapter applied
    when it has one (a model trained with ``train.method: prompt``)."""
    model = auto_class.from_pretrained(model_dir, use_safetensors=True)
    adapter = model_dir / PROMPT_ADAPTER_DIR
    if (adapter / "adapter_config.json").is_file():
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter)
    return model.eval()


def check_weights(model_dir: Path, expected: dict[str, str] | None) -> dict[str, str] | None:
    """Refuse a model folder whose safetensors differ from the hashes its manifest recorded; return the hashes
    computed (None when there was nothing to compare against)."""
    weights = weight_files(model_dir)
    if not any("/" not in name for name in weights):
        pickles = sorted(p.name for p in model_dir.glob("*.bin")) + sorted(p.name for p in model_dir.glob("*.pt"))
        raise ConfigError(f"{model_dir}: no .safetensors weights (found {pickles or 'nothing'}); Steward loads "
                          f"safetensors only. Re-save the model with save_pretrained(safe_serialization=True)")
    if expected is None:
        return None
    actual = {name: sha256_file(w) for name, w in weights.items()}
    if actual != expected:
        changed = sorted(n for n in set(actual) | set(expected) if actual.get(n) != expected.get(n))
        raise ConfigError(f"{model_dir}: weights {changed} do not match the hashes in the train manifest; the "
                          f"model was modified after training. Re-run `steward train` or restore the files")
    return actual


def length_batches(lengths: Sequence[int], max_size: int, pass_cost: float) -> list[list[int]]:
    """Group rows (by index) into padded batches of at most ``max_size`` rows so that the total work — each batch
    costs ``pass_cost`` plus rows × its longest row, in tokens — is least.

    A padded batch spends compute on the padding up to its longest row: 16 random SST-2 sentences pad to
    ~1.8× their tokens. Sorting by length and cutting where the next row gets much longer (a dynamic
    programme over the sorted lengths, O(n × max_size)) removes most of that, while not paying the fixed cost
    of a forward pass for every little group. Default model, two one-thread workers: +37 % texts/s in batches
    of 16 and +60 % in batches of 32 against one padded pass, +10 % against fixed passes of 8 (bench_serve.py
    measures it with two threads: +13 %). Hand-written: tokenizers and transformers pad to one length per call.
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    n = len(order)
    best = [0.0] + [float("inf")] * n  # best[j]: least cost of the j shortest rows
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        longest = lengths[order[j - 1]]
        for i in range(max(0, j - max_size), j):
            cost = best[i] + pass_cost + (j - i) * longest
            if cost < best[j]:
                best[j], cut[j] = cost, i
    batches: list[list[int]] = []
    j = n
    while j > 0:
        batches.append(order[cut[j]:j])
        j = cut[j]
    return batches[::-1]


@dataclass
class _TextClassifier:
    """Batching by length, softmax and embeddings shared by the PyTorch and ONNX Runtime classifiers; a subclass
    only says how one padded batch of token ids becomes logits (and embeddings)."""

    tokenizer: Any
    labels: list[str]
    multi_label: bool = False
    max_length: int = 128
    batch_size: int = 64
    # What one forward pass costs beyond its tokens, in tokens (see length_batches): on 2 CPU cores a pass of
    # the default model costs ~7.4 ms + 0.25 ms per padded token (streaming the weights from memory), so ~30.
    pass_cost_tokens: int = field(default=30, init=False)
    calls: int = field(default=0, init=False)  # texts scored so far (attack query budgets count these)
    differentiable: bool = field(default=False, init=False)  # Integrated Gradients needs autograd
    # A fast tokenizer re-applies its padding settings on every call, which fails ("Already borrowed") while
    # another thread is encoding with it; the service scores batches in several threads at once.
    _tokenizer_lock: Any = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    def encode(self, texts: Sequence[str]) -> Any:
        return self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_length,
                              return_tensors="np")

    def _outputs(self, input_ids: Any, attention_mask: Any, embeddings: bool) -> tuple[np.ndarray, np.ndarray | None]:
        raise NotImplementedError

    def token_ids(self, text: str) -> list[int]:
        """The text's token ids, special tokens included (explanations work on these)."""
        with self._tokenizer_lock:
            return list(self.tokenizer(text, truncation=True, max_length=self.max_length)["input_ids"])

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        return self._forward(texts, embeddings=False)[0]

    def _forward(self, texts: Sequence[str], embeddings: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """Logits and, when asked, each text's mean-pooled last hidden state (the model's own view of it)."""
        texts = list(texts)
        self.calls += len(texts)
        if not texts:
            return np.zeros((0, len(self.labels)), dtype=np.float32), None
        with self._tokenizer_lock:
            rows = self.tokenizer(texts, truncation=True, max_length=self.max_length)["input_ids"]
        return self._score_rows(rows, embeddings)

    def _score_rows(self, rows: Sequence[Sequence[int]], embeddings: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """Score token-id rows in the padded batches :func:`length_batches` picks; results in input order."""
        out = np.zeros((len(rows), len(self.labels)), dtype=np.float32)
        emb: np.ndarray | None = None
        pad = self.tokenizer.pad_token_id or 0
        left = getattr(self.tokenizer, "padding_side", "right") == "left"
        for idx in length_batches([len(r) for r in rows], self.batch_size, self.pass_cost_tokens):
            width = max(len(rows[i]) for i in idx)
            ids = np.full((len(idx), width), pad, dtype=np.int64)
            mask = np.zeros_like(ids)
            for k, i in enumerate(idx):
                span = slice(width - len(rows[i]), width) if left else slice(0, len(rows[i]))
                ids[k, span] = rows[i]
                mask[k, span] = 1
            z, e = self._outputs(ids, mask, embeddings)
            out[idx] = z
            if embeddings and e is not None:
                if emb is None:
                    emb = np.zeros((len(rows), e.shape[1]), dtype=np.float32)
                emb[idx] = e
        return out, emb

    def logits_from_ids(self, rows: Sequence[Sequence[int]]) -> np.ndarray:
        """Logits for rows of token ids: explanations delete tokens, not words."""
        self.calls += len(rows)
        return self._score_rows(rows, False)[0]

    def _proba(self, z: np.ndarray) -> np.ndarray:
        if self.multi_label:
            return 1.0 / (1.0 + np.exp(-z))
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return self._proba(self.logits(texts))

    def threads_per_call(self) -> int | None:
        """How many threads a call uses now, if the calling thread can choose (``set_threads``); else None."""
        return None

    def set_threads(self, n: int) -> None:
        """Let calls from this thread use ``n`` threads (a no-op where the runtime fixes it per session)."""

    def predict_with_embeddings(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities and embeddings from one forward pass (the service's drift monitor uses both)."""
        z, emb = self._forward(texts, embeddings=True)
        assert emb is not None
        return self._proba(z), emb


@dataclass
class TorchClassifier(_TextClassifier):
    """A sequence classifier on CPU (PyTorch). ``quantized``: linear layers in dynamic int8 (torch.ao), which
    has no autograd."""

    model: Any = None
    quantized: bool = False

    def __post_init__(self) -> None:
        self.differentiable = not self.quantized

    @classmethod
    def load(cls, model_dir: Path, *, expected_hashes: dict[str, str] | None = None, max_length: int = 128,
             batch_size: int = 64) -> TorchClassifier:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        check_weights(model_dir, expected_hashes)
        model = load_pretrained(model_dir, AutoModelForSequenceClassification)
        tok = AutoTokenizer.from_pretrained(model_dir)
        id2label = model.config.id2label
        labels = [str(id2label[i]) for i in range(len(id2label))]
        multi = model.config.problem_type == "multi_label_classification"
        return cls(tok, labels, multi, max_length, batch_size, model=model)

    def encode(self, texts: Sequence[str]) -> Any:
        return self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_length,
                              return_tensors="pt")

    def threads_per_call(self) -> int | None:
        import torch

        return int(torch.get_num_threads())

    def set_threads(self, n: int) -> None:
        import torch

        torch.set_num_threads(n)  # OpenMP's thread count is per calling thread: other threads keep theirs

    def _outputs(self, input_ids: Any, attention_mask: Any, embeddings: bool) -> tuple[np.ndarray, np.ndarray | None]:
        import torch

        ids, mask = torch.as_tensor(input_ids), torch.as_tensor(attention_mask)
        with torch.inference_mode():
            extra = {"output_hidden_states": True} if embeddings else {}
            res = self.model(input_ids=ids, attention_mask=mask, **extra)
            z = res.logits.float().numpy()
            if not embeddings:
                return z, None
            h = res.hidden_states[-1]
            m = mask.unsqueeze(-1).to(h.dtype)
            return z, ((h * m).sum(1) / m.sum(1).clamp(min=1)).float().numpy()


def quantize_dynamic(model: Any) -> Any:
    """The model with its ``nn.Linear`` layers in dynamic int8 (weights int8, activations quantised per batch):
    torch's own CPU int8 path, no calibration data needed."""
    import warnings

    import torch

    with warnings.catch_warnings():
        # torch.ao eager quantisation is deprecated in favour of torchao, whose int8 kernels target GPUs; on
        # CPU torch.ao's fbgemm path is still the one that runs. ONNX Runtime's int8 is the other path offered.
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


@dataclass
class OnnxClassifier(_TextClassifier):
    """A sequence classifier exported to ONNX, run by ONNX Runtime (graph ``input_ids, attention_mask ->
    logits, embedding``; see :mod:`steward.compress.onnx`)."""

    session: Any = None

    @classmethod
    def load(cls, model_dir: Path, *, max_length: int = 128, batch_size: int = 64, threads: int | None = None,
             file: str = "model.onnx") -> OnnxClassifier:
        import json

        import onnxruntime as ort
        from transformers import AutoTokenizer

        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        session = ort.InferenceSession(str(model_dir / file), opts, providers=["CPUExecutionProvider"])
        meta = json.loads((model_dir / "config.json").read_text())
        labels = [str(meta["id2label"][str(i)]) for i in range(len(meta["id2label"]))]
        multi = meta.get("problem_type") == "multi_label_classification"
        return cls(AutoTokenizer.from_pretrained(model_dir), labels, multi, max_length, batch_size, session=session)

    def _outputs(self, input_ids: Any, attention_mask: Any, embeddings: bool) -> tuple[np.ndarray, np.ndarray | None]:
        z, e = self.session.run(None, {"input_ids": np.asarray(input_ids, dtype=np.int64),
                                       "attention_mask": np.asarray(attention_mask, dtype=np.int64)})
        return z.astype(np.float32), (e.astype(np.float32) if embeddings else None)


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
        model = load_pretrained(model_dir, AutoModelForTokenClassification)
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
