"""The served model: the run's trained classifier, its hashes checked at start-up, and its release facts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steward.errors import ConfigError
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
         mode: str = "auto") -> ServedModel:
    """Load the model to serve: the compress stage's chosen artifact when there is one (``mode`` auto or
    compress), else RUN_DIR/train/model (safetensors only, hashes must match the manifest); and the
    scorecard that judged it."""
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
    if compressed is not None:
        from steward.compress.artifact import load_predictor
        from steward.hashing import sha256_tree

        folder, info = compressed
        if sha256_tree(folder) != info.sha256:
            raise ConfigError(f"{folder} differs from the artifact the compress stage chose (sha256 mismatch): it "
                              f"was modified afterwards. Re-run `steward compress`, or serve.model: train")
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
    return ServedModel(clf, version, hashes, threshold, source, manifest, scorecard, model_dir)
