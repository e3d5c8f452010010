"""The built-in PII names model: its generated training text, and its builder (cache key, reuse, concurrent
builds, tamper checks) on a tiny recipe. The real default model is exercised in test_pii_engine.py."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from steward.data.config import PIIConfig
from steward.data.pii import names
from steward.data.pii.engine import PIIEngine
from steward.data.pii.name_data import LABELS, TITLES, generate
from steward.errors import DetectorError


def tiny_recipe(**changes: object) -> dict:  # type: ignore[type-arg]
    return {**names.RECIPE, "examples": 60, "rehearsal": 10, "epochs": 1, **changes}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("cache")
    return root, names.build(root, recipe=tiny_recipe())


def test_generated_text_is_labelled_where_the_names_are() -> None:
    examples = generate(400, seed=3)
    assert examples == generate(400, seed=3)  # deterministic for a seed
    assert examples != generate(400, seed=4)
    persons = []
    for ex in examples:
        for start, end, label in ex.entities:
            value = ex.text[start:end]
            assert label in LABELS and value == value.strip() and value
            if label == "PERSON":
                persons.append(value)
                assert value.rstrip(".").split()[0] not in {t.rstrip(".") for t in TITLES}  # titles stay outside
    assert len(persons) > 300
    assert any(p.islower() for p in persons)  # lower-cased chat text
    assert any(any(ord(c) > 127 for c in p) for p in persons)  # names from many countries
    speakers = [ex for ex in examples if any(ex.text[e:e + 1] == ":" for _, e, lab in ex.entities if lab == "PERSON")]
    assert speakers  # a speaker before a colon is labelled
    assert any(not any(lab == "PERSON" for _, _, lab in ex.entities) for ex in examples)  # texts with no person


def test_a_build_is_recorded_and_checked(built) -> None:  # type: ignore[no-untyped-def]
    root, info = built
    assert info.key == names.names_key(tiny_recipe())[0] and Path(info.path).parent == root
    assert info.name.startswith("steward-names-") and info.examples == 70 and len(info.losses) == 1
    assert "meta.json" in info.files_sha256 and any(k.startswith("ner/") for k in info.files_sha256)
    assert names.read(Path(info.path), info.key) == info


def test_the_cache_is_reused_and_keyed_by_recipe(built) -> None:  # type: ignore[no-untyped-def]
    root, info = built
    mtime = (Path(info.path) / names.RECORD).stat().st_mtime_ns
    again = names.build(root, recipe=tiny_recipe())
    assert again == info and (Path(info.path) / names.RECORD).stat().st_mtime_ns == mtime
    assert names.names_key(tiny_recipe(seed=2))[0] != info.key
    assert names.names_key(tiny_recipe(epochs=2))[0] != info.key


def test_concurrent_builds_build_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    recipe = tiny_recipe(examples=30, rehearsal=5)
    calls: list[int] = []
    train = names._train
    monkeypatch.setattr(names, "_train", lambda *a, **k: (calls.append(1), train(*a, **k))[1])
    out: list = []  # type: ignore[type-arg]
    threads = [threading.Thread(target=lambda: out.append(names.build(tmp_path, recipe=recipe))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(out) == 2 and out[0] == out[1] and len(calls) == 1  # one trained, the other waited and read it
    assert len([p for p in tmp_path.iterdir() if p.name.startswith("pii-names-")]) == 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".build-")]


def test_an_edited_model_is_refused(built, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, info = built
    copy = tmp_path / Path(info.path).name
    shutil.copytree(info.path, copy)
    with pytest.raises(DetectorError, match="expected"):
        names.read(copy, "0" * 64)
    weights = copy / "model" / "ner" / "model"
    weights.write_bytes(weights.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(DetectorError, match="differ from the sha256"):
        names.read(copy, info.key)
    (copy / names.RECORD).write_text("{not json")
    with pytest.raises(DetectorError, match="unreadable"):
        names.read(copy)


def test_a_built_model_folder_can_be_named_as_the_ner_model(built) -> None:  # type: ignore[no-untyped-def]
    _, info = built
    engine = PIIEngine(PIIConfig(ner_model=str(info.model_dir))).prepare()
    (found,) = engine.detect(["call me on +44 7700 900123"])
    assert [f.entity_type for f in found] == ["PHONE_NUMBER"] and engine.ner_model_name == str(info.model_dir)
    import spacy

    assert spacy.load(info.model_dir).pipe_names == ["ner"]  # only the NER component was trained and saved


def test_the_default_is_the_builtin_model() -> None:
    assert PIIConfig().ner_model == names.BUILTIN
    key, recipe_sha = names.names_key()
    assert len(key) == 64 and recipe_sha != names.names_key({**names.RECIPE, "epochs": 9})[1]


def test_the_generated_text_is_the_same_in_every_process() -> None:
    """Faker builds some word lists from sets (their order follows PYTHONHASHSEED); the cache key hashes the
    generated text, so a process-dependent order would rebuild the model in every process."""
    import os
    import subprocess
    import sys

    code = ("from steward.data.pii.name_data import generate; from steward.hashing import digest; "
            "print(digest([(e.text, e.entities) for e in generate(3000, seed=1)]))")
    out = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2")}
    assert len(out) == 1
