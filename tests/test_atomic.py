from pathlib import Path

import pytest

from steward.atomic import atomic_dir, write_json, write_text, write_with


def test_failed_write_leaves_previous_content(tmp_path: Path) -> None:
    target = write_text(tmp_path / "out.txt", "old")

    def boom(tmp: Path) -> None:
        tmp.write_text("half of the new cont")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        write_with(target, boom)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]  # no temp file left behind


def test_write_json_is_complete(tmp_path: Path) -> None:
    p = write_json(tmp_path / "a" / "b.json", {"x": 1})
    assert p.read_text().strip() == '{\n  "x": 1\n}'


def test_atomic_dir_swaps_whole_sets_and_keeps_old_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "data"
    with atomic_dir(target) as gen:
        (gen / "a.txt").write_text("v1")
        (gen / "b.txt").write_text("v1")
    assert target.is_symlink() and (target / "a.txt").read_text() == "v1"
    with pytest.raises(RuntimeError), atomic_dir(target) as gen:
        (gen / "a.txt").write_text("v2")
        raise RuntimeError("interrupted before b.txt")
    assert (target / "a.txt").read_text() == "v1" and (target / "b.txt").read_text() == "v1"
    with atomic_dir(target) as gen:
        (gen / "a.txt").write_text("v3")
    assert sorted(p.name for p in target.iterdir()) == ["a.txt"]
    # only the live generation remains beside the link
    assert len([p for p in tmp_path.iterdir() if p.name.startswith(".data.")]) == 1


def test_atomic_dir_replaces_a_plain_directory(tmp_path: Path) -> None:
    target = tmp_path / "data"
    target.mkdir()
    (target / "stale.txt").write_text("x")
    with atomic_dir(target) as gen:
        (gen / "new.txt").write_text("y")
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
