"""The classifier service's config (``steward serve``): batching, its guards, drift, on the shared service settings."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Protocol

from pydantic import AfterValidator, Field, model_validator

from steward.config_base import StageConfig
from steward.evaluate.config import EvaluateConfig
from steward.service.config import InputGuardSettings, ServiceSettings, registered


def _output_guards(names: list[str]) -> list[str]:
    # Imported when a config is validated, not when this module loads: the guards import this module.
    from steward.serve.output_guards import OUTPUT_GUARDS

    return registered(OUTPUT_GUARDS, names)


OutputGuardNames = Annotated[list[str], AfterValidator(_output_guards)]


class BatchingSettings(StageConfig):
    # Requests arriving together are scored in one forward pass: at most this many texts, waiting at most
    # max_wait_ms for company. 16 rather than 32: under load, one batch is scored while the next one's
    # requests are parsed, guarded and audited (concurrency 32: +7 % requests/s, bench/bench_serve.py).
    max_batch_size: int = Field(16, ge=1, le=1024)
    max_wait_ms: float = Field(5.0, ge=0.0, le=1000.0)  # only while requests arrive closer together than this
    # At most this many texts in one forward pass. A batch is cut by length into passes where padding the
    # short texts to the long ones would cost more than another pass (steward.inference.length_batches).
    physical_batch_size: int = Field(32, ge=1, le=1024)
    # Batches scored at once, each in its own thread with one intra-op thread (a lone request still gets all
    # of them). PyTorch models only; an ONNX Runtime model fixes its threads per session and uses one worker.
    workers: int = Field(2, ge=1, le=16)


class GuardSettings(InputGuardSettings):
    """The classifier service's guards: the input guards (:class:`InputGuardSettings`), then output guards on
    the label it returns. Both run in the listed order; a client cannot switch one off."""

    output: OutputGuardNames = Field(default_factory=lambda: ["confidence", "label_allowlist", "pii_echo"])
    label_allowlist: list[str] | None = None  # null: every label the model knows


class DriftSettings(StageConfig):
    window: int = Field(500, ge=10)  # live requests compared with the evaluation set
    min_samples: int = Field(100, ge=10)
    psi_threshold: float = Field(0.2, gt=0.0)  # population stability index that raises an alert
    # Embedding drift: the window's mean-pooled model embeddings against the evaluation set's, by a kernel
    # two-sample test (MMD with a permutation p-value); an alert when p < embedding_p_value.
    embedding: bool = True
    embedding_p_value: float = Field(0.01, gt=0.0, lt=1.0)
    reference_rows: int = Field(500, ge=20)  # evaluation rows embedded at start-up (cached per model)
    permutations: int = Field(200, ge=20)
    check_seconds: float = Field(30.0, ge=0.0)  # background check (alerts, Prometheus); 0 = only on GET /v1/monitor

    @model_validator(mode="after")
    def _enough_permutations(self) -> DriftSettings:
        if self.embedding and (1 + self.permutations) * self.embedding_p_value < 1:
            raise ValueError(f"permutations: got {self.permutations}; the smallest p-value it can give is "
                             f"1/{self.permutations + 1}, above embedding_p_value {self.embedding_p_value}, so "
                             f"no embedding alert could ever fire. Fix: permutations >= "
                             f"{int(1 / self.embedding_p_value)}")
        return self


class ServeConfig(ServiceSettings):
    """The guarded inference service (``steward serve``)."""

    # auto: the compress stage's chosen artifact when there is one, else the trained model;
    # train: always RUN_DIR/train/model; compress: the chosen artifact (an error if there is none).
    model: Literal["auto", "train", "compress"] = "auto"
    max_text_chars: int = Field(5_000, ge=1)
    max_batch_texts: int = Field(64, ge=1)
    # A key that checked out is trusted this long before the database is asked again (0: ask on every
    # request); `steward keys revoke` takes effect within this time.
    key_cache_seconds: float = Field(2.0, ge=0.0, le=300.0)
    abstain_threshold: float | None = Field(None, ge=0.0, le=1.0)  # null: the evaluate stage's recommendation
    batching: BatchingSettings = Field(default_factory=BatchingSettings)
    guards: GuardSettings = Field(default_factory=GuardSettings)
    drift: DriftSettings = Field(default_factory=DriftSettings)


class ServeRun(Protocol):
    """What the classifier service reads of a run's config (its run folder, ``serve``, and ``evaluate`` for a
    re-audit); :class:`steward.config.RunConfig` is one. The service names only the sections it reads, so it
    never imports the config that composes every stage."""

    @property
    def run_dir(self) -> Path: ...

    @property
    def serve(self) -> ServeConfig: ...

    @property
    def evaluate(self) -> EvaluateConfig: ...
