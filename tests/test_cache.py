"""steward.cache.build_once: one build per machine, nothing half-made left behind, old entries replaced safely."""

from pathlib import Path

import pytest

from steward.cache import build_once


def _maker(text: str):  # type: ignore[no-untyped-def]
    def make(tmp: Path) -> None:
        (tmp / "data.txt").write_text(text)
        (tmp / "record.json").write_text("{}")
    return make


def test_a_folder_left_by_a_killed_build_is_swept(tmp_path: Path) -> None:
    stale = tmp_path / ".build-entry-abc123"  # what a SIGKILLed build leaves
    stale.mkdir()
    (stale / "half.bin").write_bytes(b"x" * 10)
    other = tmp_path / ".build-another-xyz"  # another target's build: not ours to touch
    other.mkdir()
    build_once(tmp_path / "entry", "record.json", _maker("v1"))
    assert not stale.exists() and other.exists()
    assert (tmp_path / "entry" / "data.txt").read_text() == "v1"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".build-")) == [other.name]


def test_a_failed_build_leaves_nothing(tmp_path: Path) -> None:
    def broken(tmp: Path) -> None:
        (tmp / "part").write_text("x")
        raise RuntimeError("out of disk")

    with pytest.raises(RuntimeError):
        build_once(tmp_path / "entry", "record.json", broken)
    assert not (tmp_path / "entry").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith((".build-", ".old-"))]


def test_force_replaces_the_entry_while_a_reader_keeps_its_open_file(tmp_path: Path) -> None:
    target = tmp_path / "entry"
    build_once(target, "record.json", _maker("v1"))
    with (target / "data.txt").open() as reader:  # a service reading the old entry
        build_once(target, "record.json", _maker("v2"), force=True)
        assert reader.read() == "v1"
    assert (target / "data.txt").read_text() == "v2"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith((".build-", ".old-"))]
    build_once(target, "record.json", _maker("v3"))  # built already: nothing happens without force
    assert (target / "data.txt").read_text() == "v2"
