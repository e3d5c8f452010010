"""Where the answers come from, behind one interface: a local causal LM (the embedded SmolLM2 or any Hugging
Face directory) run with transformers ``generate``, or an upstream OpenAI-compatible server.

A backend turns chat messages into a :class:`Generation`: an iterator of text pieces, consumed in a worker
thread, that the gateway can cancel (an output guard stopped the answer, or the client went away); when it
ends it carries the token counts and why it stopped.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import re
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from steward.errors import ConfigError, StewardError
from steward.hashing import digest
from steward.offline_models import EMBEDDED_MODEL_ID, embedded_gguf, embedded_model_dir  # noqa: F401 — re-exported
from steward.records import TrainManifest
from steward.registry import Registry

_log = logging.getLogger("steward.gateway")


class BackendError(StewardError):
    """The model behind the gateway failed or refused (an upstream error, a prompt it cannot take)."""

    def __init__(self, message: str, status: int = 502, code: str = "upstream_error") -> None:
        super().__init__(message)
        self.status, self.code = status, code


@dataclass(frozen=True)
class GenerationParams:
    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int = 0


@dataclass
class Generation:
    """Text pieces as they are produced. ``prompt_tokens`` is known at once; ``completion_tokens`` and
    ``finish_reason`` ("stop" or "length") once the iterator is exhausted."""

    pieces: Iterator[str]
    prompt_tokens: int
    cancel: threading.Event = field(default_factory=threading.Event)
    completion_tokens: int = 0
    finish_reason: str = "stop"
    tokens_approximate: bool = False  # an upstream that reported no usage: counted as characters / 4

    def __iter__(self) -> Iterator[str]:
        return self.pieces


class ChatBackend(Protocol):
    model_id: str  # what the backend calls its model
    model_hash: str  # the weights' sha256 (local) or the upstream's URL and model (upstream)
    facts: dict[str, Any]  # what /v1/models says of the model: its source and, for a run's own, its training

    def prompt_tokens(self, messages: list[dict[str, str]]) -> int: ...

    def generate(self, messages: list[dict[str, str]], params: GenerationParams) -> Generation: ...

    def close(self) -> None: ...


BACKENDS: Registry[ChatBackend] = Registry("gateway backend")


# --- local causal LM -------------------------------------------------------------------------------------

class _Cancelled(Exception):
    pass


class LocalBackend:
    """A causal LM on CPU with its chat template. One generation at a time (a second request waits): two at
    once would only share the same cores."""

    def __init__(self, model_dir: Path, *, name: str | None = None, threads: int | None = None,
                 expected_weights: dict[str, str] | None = None) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from steward.inference import check_weights, load_pretrained, weight_files

        model_dir = Path(model_dir)
        if not model_dir.is_dir():
            raise ConfigError(f"gateway.model_path: {model_dir} is not a directory. Fix: point it at a Hugging "
                              f"Face causal-LM folder (config.json, *.safetensors, tokenizer files)")
        checked = check_weights(model_dir, expected_weights)  # safetensors only; hashes must match when given
        if threads:
            torch.set_num_threads(threads)
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        if not getattr(self.tokenizer, "chat_template", None):
            raise ConfigError(f"gateway.model_path: the tokenizer in {model_dir} has no chat template, so chat "
                              f"messages cannot be turned into a prompt. Fix: use an instruction-tuned model "
                              f"(its tokenizer_config.json carries chat_template)")
        self.model = load_pretrained(model_dir, AutoModelForCausalLM)
        from steward.hashing import sha256_file

        self.weights_sha256 = checked or {n: sha256_file(p) for n, p in weight_files(model_dir).items()}
        self.model_hash = digest(self.weights_sha256)
        self.model_id = name or model_dir.name
        self.facts: dict[str, Any] = {"source": "local", "method": None}
        self._lock = threading.Lock()

    def _ids(self, messages: list[dict[str, str]]) -> list[int]:
        out = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        ids = out["input_ids"] if isinstance(out, dict) or hasattr(out, "keys") else out
        return list(ids)

    def prompt_tokens(self, messages: list[dict[str, str]]) -> int:
        return len(self._ids(messages))

    def generate(self, messages: list[dict[str, str]], params: GenerationParams) -> Generation:
        ids = self._ids(messages)
        gen = Generation(iter(()), len(ids))
        gen.pieces = self._run(ids, params, gen)
        return gen

    def _run(self, ids: list[int], params: GenerationParams, gen: Generation) -> Iterator[str]:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        class _StopOnCancel(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> bool:  # type: ignore[override]
                return gen.cancel.is_set()

        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        sample = params.temperature > 0
        config = copy.deepcopy(self.model.generation_config)
        config.do_sample = sample
        config.max_new_tokens = params.max_tokens
        config.pad_token_id = self.tokenizer.pad_token_id or self.tokenizer.eos_token_id
        # Greedy: the library's neutral values, so the model's own sampling defaults draw no warnings.
        config.temperature, config.top_p, config.top_k = ((params.temperature, params.top_p, 0) if sample
                                                          else (1.0, 1.0, 50))
        kwargs: dict[str, Any] = {
            "input_ids": torch.tensor([ids]), "attention_mask": torch.ones(1, len(ids), dtype=torch.long),
            "generation_config": config, "streamer": streamer,
            "stopping_criteria": StoppingCriteriaList([_StopOnCancel()])}
        if params.stop:
            kwargs.update(stop_strings=list(params.stop), tokenizer=self.tokenizer)
        result: dict[str, Any] = {}

        def work() -> None:
            with self._lock, torch.inference_mode():
                if sample:
                    torch.manual_seed(params.seed)
                try:
                    result["out"] = self.model.generate(**kwargs)
                except Exception as exc:  # noqa: BLE001 — re-raised in the consuming thread
                    result["error"] = exc
                    streamer.end()

        worker = threading.Thread(target=work, name="steward-generate", daemon=True)
        worker.start()
        yield from streamer
        worker.join()
        if "error" in result:
            raise BackendError(f"generation failed: {type(result['error']).__name__}: {result['error']}", 500,
                               "generation_failed")
        new = result["out"][0, len(ids):].tolist()
        gen.completion_tokens = len(new)
        eos = self.model.generation_config.eos_token_id
        eos_ids = {self.tokenizer.eos_token_id, *(eos if isinstance(eos, list) else [eos])}
        ended = bool(new) and new[-1] in eos_ids
        gen.finish_reason = "length" if len(new) >= params.max_tokens and not ended else "stop"

    def close(self) -> None:
        pass


# --- upstream OpenAI-compatible server -------------------------------------------------------------------

_CODE = re.compile(r"[a-z][a-z0-9_]{0,47}")


def without_credentials(url: str) -> str:
    """``url`` without a user name or password in it (``https://user:pw@host/v1`` -> ``https://host/v1``)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port:
        netloc += f":{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


class UpstreamBackend:
    """A thin client for ``POST {base}/chat/completions`` with ``stream: true`` (vLLM, TGI, llama.cpp server,
    Ollama, another Steward gateway). Asks for usage in the last chunk; without it, counts characters / 4."""

    def __init__(self, base_url: str, *, model: str | None = None, api_key: str | None = None,
                 timeout: float = 300.0) -> None:
        import httpx

        self.base = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(base_url=self.base, headers=headers, timeout=httpx.Timeout(timeout, connect=10.0))
        if model is None:
            try:
                r = self.client.get("/models")
                r.raise_for_status()
                model = r.json()["data"][0]["id"]
            except Exception as exc:
                raise ConfigError(f"gateway.upstream_url: could not list models at {without_credentials(self.base)}"
                                  f"/models ({type(exc).__name__}). Fix: check the URL (it usually ends in /v1) "
                                  f"and the key, or set gateway.upstream_model") from exc
        self.model_id = model
        # What clients see as the model's hash: it names the upstream and its model without saying where it
        # is (an internal address, or credentials in the URL, are no business of a caller's).
        self.model_hash = "upstream:" + digest({"upstream": without_credentials(self.base), "model": model})
        self.facts = {"source": "upstream", "method": None}

    def prompt_tokens(self, messages: list[dict[str, str]]) -> int:
        return math.ceil(sum(len(m["content"]) for m in messages) / 4) + 4 * len(messages)

    def generate(self, messages: list[dict[str, str]], params: GenerationParams) -> Generation:
        gen = Generation(iter(()), self.prompt_tokens(messages), tokens_approximate=True)
        gen.pieces = self._run(messages, params, gen)
        return gen

    def _run(self, messages: list[dict[str, str]], params: GenerationParams, gen: Generation) -> Iterator[str]:
        import httpx

        body: dict[str, Any] = {"model": self.model_id, "messages": messages, "stream": True,
                                "max_tokens": params.max_tokens, "temperature": params.temperature,
                                "top_p": params.top_p, "stream_options": {"include_usage": True}}
        if params.stop:
            body["stop"] = list(params.stop)
        if params.temperature > 0:
            body["seed"] = params.seed
        chars = 0
        try:
            with self.client.stream("POST", "/chat/completions", json=body) as r:
                if r.status_code >= 400:
                    # Not relayed: an upstream's error text can name its hosts, paths or keys. The caller gets
                    # the status and a reason code that is a plain identifier.
                    detail = r.read()[:4096].decode("utf-8", "replace")
                    try:
                        err = json.loads(detail).get("error") or {}
                    except (ValueError, AttributeError):
                        err = {}
                    code = err.get("code") if isinstance(err, dict) else None
                    code = code if isinstance(code, str) and _CODE.fullmatch(code) else "upstream_error"
                    status = 400 if r.status_code in (400, 422) else 502
                    raise BackendError(f"the upstream model refused the request (HTTP {r.status_code}, {code})",
                                       status, code)
                for line in r.iter_lines():
                    if gen.cancel.is_set():
                        gen.finish_reason = "stop"
                        return
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    chunk = json.loads(data)
                    if chunk.get("usage"):
                        gen.prompt_tokens = int(chunk["usage"].get("prompt_tokens", gen.prompt_tokens))
                        gen.completion_tokens = int(chunk["usage"].get("completion_tokens", 0))
                        gen.tokens_approximate = False
                    for choice in chunk.get("choices") or []:
                        piece = (choice.get("delta") or {}).get("content")
                        if piece:
                            chars += len(piece)
                            yield piece
                        if choice.get("finish_reason"):
                            gen.finish_reason = choice["finish_reason"]
        except httpx.HTTPError as exc:
            raise BackendError(f"the upstream model did not answer ({type(exc).__name__})") from exc
        if gen.tokens_approximate:
            gen.completion_tokens = math.ceil(chars / 4)

    def close(self) -> None:
        self.client.close()


def run_chat_model(run_dir: Path | None) -> TrainManifest | None:
    """The train manifest of the run's fine-tuned chat model, or None when the run has not trained one."""
    path = Path(run_dir) / "train" / "manifest.json" if run_dir is not None else None
    if path is None or not path.is_file():
        return None
    manifest = TrainManifest.read(path)
    return manifest if manifest.task == "chat" else None


def run_model_facts(run_dir: Path, manifest: TrainManifest) -> dict[str, Any]:
    """What ``/v1/models`` says of a run's own model: where it came from, how it was trained, on which data."""
    from steward.hashing import sha256_file

    path = Path(run_dir) / "train" / "manifest.json"
    privacy = manifest.privacy or {}
    return {"source": "run", "base_model": manifest.base_model.get("id"),
            "base_weights_sha256": manifest.base_model.get("weights_sha256"), "method": manifest.method,
            "data_sha256": {split: ref.get("sha256") for split, ref in (manifest.data_inputs or {}).items()},
            "train_manifest": {"path": "train/manifest.json", "sha256": sha256_file(path)},
            "best_metric": manifest.best_metric, "train_rows": manifest.train_rows,
            "privacy": {k: privacy.get(k) for k in ("enabled", "epsilon", "delta")} if privacy else None}


@BACKENDS.register("embedded")
def _embedded(cfg: Any, progress: Callable[[str], None] | None = None, run_dir: Path | None = None) -> LocalBackend:
    folder = embedded_model_dir(progress)
    expected = json.loads((folder / "steward_model.json").read_text())["weights_sha256"]
    backend = LocalBackend(folder, name=cfg.model_name or "SmolLM2-135M-Instruct", threads=cfg.threads,
                           expected_weights=expected)
    backend.facts = {"source": "embedded", "base_model": EMBEDDED_MODEL_ID, "method": None}
    return backend


@BACKENDS.register("run")
def _run(cfg: Any, progress: Callable[[str], None] | None = None, run_dir: Path | None = None) -> LocalBackend:
    """The run's own fine-tuned chat model, refused at start-up if its weights differ from its manifest's."""
    manifest = run_chat_model(run_dir)
    if manifest is None or run_dir is None:
        raise ConfigError(f"gateway.backend: 'run' serves the run's fine-tuned chat model, and "
                          f"{Path(run_dir or '.') / 'train'} holds none. Fix: run `steward data` on conversations "
                          f"(data.input.task: chat) and `steward train` for this run, or set backend: embedded")
    from steward.ledger.trust import attest, summary
    from steward.service.signing import ledger_trust

    # the manifest the weights are checked against is itself checked against the signed ledger event that wrote it
    attested = attest(run_dir, ["train/manifest.json", "train/model"], **ledger_trust(cfg.transparency, _log))
    base = str(manifest.base_model.get("id") or "model").rstrip("/").rsplit("/", 1)[-1]
    name = cfg.model_name or f"{base}-{manifest.method}-{digest(manifest.model_weights_sha256)[:8]}"
    backend = LocalBackend(Path(run_dir) / "train" / "model", name=name, threads=cfg.threads,
                           expected_weights=manifest.model_weights_sha256)
    backend.facts = {**run_model_facts(run_dir, manifest),
                     "ledger": summary(attested)}
    return backend


@BACKENDS.register("auto")
def _auto(cfg: Any, progress: Callable[[str], None] | None = None, run_dir: Path | None = None) -> LocalBackend:
    """The run's fine-tuned chat model when it has one, else the embedded SmolLM2."""
    if run_chat_model(run_dir) is not None:
        return _run(cfg, progress, run_dir)
    return _embedded(cfg, progress, run_dir)


@BACKENDS.register("local")
def _local(cfg: Any, progress: Callable[[str], None] | None = None, run_dir: Path | None = None) -> LocalBackend:
    backend = LocalBackend(Path(cfg.model_path), name=cfg.model_name, threads=cfg.threads)
    backend.facts = {"source": "local", "path": str(cfg.model_path), "method": None}
    return backend


@BACKENDS.register("upstream")
def _upstream(cfg: Any, progress: Callable[[str], None] | None = None, run_dir: Path | None = None
              ) -> UpstreamBackend:
    key = None
    if cfg.upstream_api_key_env:
        key = os.environ.get(cfg.upstream_api_key_env)
        if not key:
            raise ConfigError(f"gateway.upstream_api_key_env: the environment variable "
                              f"{cfg.upstream_api_key_env!r} is not set. Fix: export it with the upstream's key")
    return UpstreamBackend(cfg.upstream_url, model=cfg.upstream_model, api_key=key, timeout=cfg.request_timeout_s)
