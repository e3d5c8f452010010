"""The served model: the run's trained classifier, its hashes checked at start-up, and its release facts."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from steward.errors import ConfigError, LedgerIntegrityError
from steward.ledger.trust import Attested, attest
from steward.records import ChosenArtifact, Scorecard, TrainManifest


@dataclass
class ServedModel:
    clf: Any  # steward.inference.TorchClassifier
    version: str
    weights_sha256: dict[str, str]
    threshold: float
    threshold_source: str
    manifest: TrainManifest
    scorecard: Scorecard | None = None  # the scorecard that judged this model (None: never evaluated)
    model_dir: Path = Path()
    ledger: dict[str, Attested] = field(default_factory=dict)  # what the signed ledger vouches for, by path

    @property
    def labels(self) -> list[str]:
        return list(self.clf.labels)

    @property
    def hash(self) -> str:
        from steward.hashing import digest

        return digest(self.weights_sha256)


def _compressed(run_dir: Path, mode: str) -> tuple[Path, ChosenArtifact] | None:
    """The compress stage's chosen artifact to serve, if any (and if ``mode`` allows it)."""
    chosen = run_dir / "compress" / "chosen.json"
    if mode == "train":
        return None
    if not chosen.is_file():
        if mode == "compress":
            raise ConfigError(f"serve.model: got 'compress', but {run_dir / 'compress'} holds no chosen artifact. "
                              f"Fix: run `steward compress`, or set serve.model to auto or train")
        return None
    info = ChosenArtifact.read(chosen)
    if info.name == ChosenArtifact.ORIGINAL:
        return None  # no candidate beat the original: serve the trained model
    return run_dir / info.path, info


def load(run_dir: Path, abstain_threshold: float | None, max_length: int = 128, batch_size: int = 64,
         mode: str = "auto", *, public_key: bytes | None = None, allow_unsigned: bool = False) -> ServedModel:
    """Load the model to serve: the compress stage's chosen artifact when there is one (``mode`` auto or
    compress), else RUN_DIR/train/model (safetensors only, hashes must match the manifest); and the
    scorecard that judged it. Every file it trusts (the choice, the model, the manifest, the scorecard) must
    be as a signed ledger event recorded it (``steward.ledger.trust``; ``public_key``: the ledger's signer,
    default this machine's key), else ``LedgerIntegrityError``."""
    from steward.inference import TorchClassifier

    manifest_path = run_dir / "train" / "manifest.json"
    if not manifest_path.is_file():
        raise ConfigError(f"serve: no trained model in {run_dir / 'train'}; run `steward train` (and `steward "
                          f"evaluate`) for this run first")
    manifest = TrainManifest.read(manifest_path)
    if manifest.task != "classification":
        raise ConfigError(f"serve: the model in {run_dir} is a {manifest.task} model; the service serves "
                          f"sequence classifiers")
    hashes = manifest.model_weights_sha256
    compressed = _compressed(run_dir, mode)
    # The hashes below come from the signed ledger, not from the files beside the artifacts: chosen.json and
    # the manifest are themselves checked against the events that wrote them before anything in them is used.
    if compressed is not None:
        folder, info = compressed
        attested = attest(run_dir, ["train/manifest.json", "compress/chosen.json", info.path],
                          public_key=public_key, allow_unsigned=allow_unsigned)
        if attested[info.path].sha256 != info.sha256:
            raise LedgerIntegrityError(f"{folder}: the compress stage's chosen.json and its ledger event name "
                                       "different artifacts. Fix: re-run `steward compress`, or serve.model: train")
    else:
        optional = ["evaluate/scorecard.json"] + (["compress/chosen.json"] if mode != "train" else [])
        attested = attest(run_dir, ["train/manifest.json", "train/model"], optional=optional,
                          public_key=public_key, allow_unsigned=allow_unsigned)
    if compressed is not None:
        from steward.compress.artifact import load_predictor

        clf = load_predictor(folder, max_length=max_length, batch_size=batch_size)
        hashes = {"artifact": info.sha256}
        sc_path = folder / "scorecard.json"
        model_dir, kind = folder, f"{info.name}-"
    else:
        clf = TorchClassifier.load(run_dir / "train" / "model", expected_hashes=hashes, max_length=max_length,
                                   batch_size=batch_size)
        sc_path = run_dir / "evaluate" / "scorecard.json"
        model_dir, kind = run_dir / "train" / "model", ""
    scorecard = Scorecard.read(sc_path) if sc_path.is_file() else None
    recommended = scorecard.abstain_threshold() if scorecard is not None else None
    if abstain_threshold is not None:
        threshold, source = abstain_threshold, "serve.abstain_threshold"
    elif recommended is not None:
        threshold, source = recommended, "evaluate stage recommendation"
    else:
        threshold, source = 0.5, "default (no scorecard recommendation)"
    version = f"{run_dir.resolve().name}@{kind}{next(iter(hashes.values()), 'unhashed')[:12]}"
    return ServedModel(clf, version, hashes, threshold, source, manifest, scorecard, model_dir,
                       attested)
