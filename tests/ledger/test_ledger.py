import json
from pathlib import Path

import pytest

from steward.ledger import GENESIS, Ledger, verify
from steward.ledger.store import artifact, now_iso


def _run(tmp_path: Path, n_events: int = 3) -> Path:
    run = tmp_path / "run"
    for i in range(n_events):
        out = run / f"stage{i}" / "out.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(f"output {i}")
        Ledger(run).append(stage=f"stage{i}", started_at=now_iso(), config_digest=f"cfg{i}",
                           inputs=[], outputs=[artifact(out, run, "out")], summary={"i": i})
    return run


def _lines(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "ledger.jsonl").read_text().splitlines()]


def _write(run: Path, events: list[dict]) -> None:
    (run / "ledger.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))


def test_intact_chain_verifies(tmp_path: Path) -> None:
    run = _run(tmp_path)
    report = verify(run)
    assert report.ok, report.error
    assert (report.events, report.artifacts_checked) == (3, 3)
    events = _lines(run)
    assert events[0]["prev_hash"] == GENESIS
    assert events[1]["prev_hash"] == events[0]["hash"]
    assert events[0]["outputs"][0]["path"] == "stage0/out.txt"
    assert set(events[0]["provenance"]) >= {"steward_version", "git_commit"}


def test_edited_artifact_is_named(tmp_path: Path) -> None:
    run = _run(tmp_path)
    (run / "stage1" / "out.txt").write_text("tampered")
    report = verify(run)
    assert not report.ok and report.broken_index == 1
    assert "artifact stage1/out.txt was modified" in report.error


def test_deleted_artifact_is_named(tmp_path: Path) -> None:
    run = _run(tmp_path)
    (run / "stage2" / "out.txt").unlink()
    report = verify(run)
    assert not report.ok and report.broken_index == 2 and "missing" in report.error


def test_edited_event_is_named(tmp_path: Path) -> None:
    run = _run(tmp_path)
    events = _lines(run)
    events[1]["summary"]["i"] = 99
    _write(run, events)
    report = verify(run)
    assert not report.ok and report.broken_index == 1 and "event edited" in report.error


@pytest.mark.parametrize("how", ["delete", "reorder"])
def test_deleted_or_reordered_event(tmp_path: Path, how: str) -> None:
    run = _run(tmp_path)
    events = _lines(run)
    events = [events[0], events[2]] if how == "delete" else [events[0], events[2], events[1]]
    _write(run, events)
    report = verify(run)
    assert not report.ok and report.broken_index == 1


def test_event_appended_out_of_chain(tmp_path: Path) -> None:
    run = _run(tmp_path)
    events = _lines(run)
    forged = dict(events[-1], index=3, prev_hash="f" * 64, stage="forged")
    _write(run, [*events, forged])
    report = verify(run)
    assert not report.ok and report.broken_index == 3 and "out of chain" in report.error


def test_rerun_supersedes_earlier_artifact_hash(tmp_path: Path) -> None:
    run = _run(tmp_path, 1)
    out = run / "stage0" / "out.txt"
    out.write_text("second run")
    Ledger(run).append(stage="stage0", started_at=now_iso(), config_digest="c", inputs=[],
                       outputs=[artifact(out, run, "out")])
    report = verify(run)
    assert report.ok and report.superseded == 1


def test_truncated_line_is_reported(tmp_path: Path) -> None:
    run = _run(tmp_path)
    text = (run / "ledger.jsonl").read_text()
    (run / "ledger.jsonl").write_text(text[:-30])
    report = verify(run)
    assert not report.ok and report.broken_index == 2 and "unreadable" in report.error


def test_empty_ledger_is_not_ok(tmp_path: Path) -> None:
    assert not verify(tmp_path).ok


from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_single_character_edit_of_the_ledger_is_detected(tmp_path_factory, data) -> None:  # type: ignore[no-untyped-def]
    run = _run(tmp_path_factory.mktemp("prop"), 3)
    raw = (run / "ledger.jsonl").read_text()
    pos = data.draw(st.integers(0, len(raw) - 2))
    if raw[pos] == "\n":
        return
    replacement = data.draw(st.sampled_from("0123456789abcdefx"))
    if replacement == raw[pos]:
        return
    (run / "ledger.jsonl").write_text(raw[:pos] + replacement + raw[pos + 1:])
    try:
        json_ok = all(json.loads(line) for line in (run / "ledger.jsonl").read_text().splitlines())
    except json.JSONDecodeError:
        json_ok = False
    report = verify(run)
    assert not report.ok, f"edit at {pos} ({raw[pos]!r} -> {replacement!r}) went unnoticed (valid json: {json_ok})"


@pytest.mark.parametrize("path, why", [
    ("stage9/out.txt", "does not resolve from the run folder"),  # relative to the cwd, not the run folder
    ("../outside.txt", "does not resolve from the run folder"),  # climbs out of it
    ("/nonexistent/steward/input.csv", "does not exist"),
])
def test_append_refuses_a_path_that_does_not_resolve(tmp_path: Path, path: str, why: str) -> None:
    from steward.errors import LedgerError
    from steward.types import ArtifactRef

    run = _run(tmp_path, 1)
    (tmp_path / "outside.txt").write_text("x")
    before = (run / "ledger.jsonl").read_text()
    with pytest.raises(LedgerError, match=why):
        Ledger(run).append(stage="bad", started_at=now_iso(), config_digest="c", inputs=[],
                           outputs=[ArtifactRef(path, "0" * 64, "out")])
    assert (run / "ledger.jsonl").read_text() == before  # nothing was written


def test_append_refuses_an_absolute_path_inside_the_run_folder(tmp_path: Path) -> None:
    from steward.errors import LedgerError
    from steward.types import ArtifactRef

    run = _run(tmp_path, 1)
    inside = run / "stage0" / "out.txt"
    with pytest.raises(LedgerError, match="recorded by an absolute path"):
        Ledger(run).append(stage="bad", started_at=now_iso(), config_digest="c", inputs=[],
                           outputs=[ArtifactRef(str(inside), "0" * 64, "out")])


def test_artifact_records_relative_to_the_run_folder_whatever_the_cwd(tmp_path: Path, monkeypatch) -> None:
    run = _run(tmp_path, 1)
    monkeypatch.chdir(tmp_path)
    assert artifact(Path("run/stage0/out.txt"), Path("run")).path == "stage0/out.txt"
    assert artifact(run / "stage0" / "out.txt", "run").path == "stage0/out.txt"
    outside = tmp_path / "input.csv"
    outside.write_text("a,b\n")
    assert artifact("input.csv", "run").path == str(outside)
