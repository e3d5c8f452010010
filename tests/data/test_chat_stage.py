"""The data stage on conversations (input.task: chat): every turn is normalised, checked for PII and screened,
answers by their own bar; duplicates of whole conversations and of prompts go; each bad record is quarantined
with its reason and every row is accounted for."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from steward.config import parse_config
from steward.data import run
from steward.errors import InputDataError
from steward.ledger import verify

ITEMS = ["headphones", "router", "kettle", "laptop stand", "phone case", "desk lamp", "backpack", "keyboard"]
ASKS = [("Where is my {x}? It should have arrived on Monday.", "Your {x} is with the courier and arrives tomorrow."),
        ("How do I return the {x} I bought last week?", "Print the label from your orders page and drop the {x} "
                                                          "at any post office."),
        ("The {x} stopped working after two days, what now?", "Sorry about that. We will send a replacement {x} "
                                                              "today at no cost."),
        ("Can I change the colour of the {x} on my order?", "Yes, until it ships: open the order and pick another "
                                                            "colour for the {x}.")]


def _conversations() -> list[dict]:
    out = []
    for x in ITEMS:
        for q, a in ASKS:
            out.append({"messages": [{"role": "user", "content": q.format(x=x)},
                                     {"role": "assistant", "content": a.format(x=x)}]})
    return out


def _write(path: Path, records: list, bad_lines: tuple[str, ...] = ()) -> Path:
    path.write_text("\n".join([json.dumps(r) for r in records] + list(bad_lines)) + "\n", encoding="utf-8")
    return path


def _cfg(tmp_path: Path, path: Path, **data: object) -> object:
    return parse_config({"run_dir": str(tmp_path / "run"),
                         "data": {"input": {"path": str(path), "task": "chat"}, "pii": {"ner": False},
                                  "split": {"validation": 0.15, "test": 0.15}, **data}})


def test_planted_problems_in_conversations_are_found_and_every_row_is_accounted_for(tmp_path: Path) -> None:
    good = _conversations()
    planted = [
        # PII in the user's turn and repeated by the answer: both turns are redacted
        {"messages": [{"role": "user", "content": "Charge my card 4111 1111 1111 1111 for the mouse please"},
                      {"role": "assistant", "content": "Done, card 4111 1111 1111 1111 charged; receipt to "
                                                        "jane.doe@example.com"}]},
        # a toxic answer: quarantined by the answers' own bar
        {"messages": [{"role": "user", "content": "My webcam order is late again."},
                      {"role": "assistant", "content": "Shut up, you stupid idiot, nobody cares about your "
                                                        "pathetic webcam."}]},
        good[0],  # an exact copy of a conversation
        # the same prompt as another conversation, with another answer
        {"messages": [good[1]["messages"][0], {"role": "assistant", "content": "We can help with returns."}]},
        {"messages": [{"role": "customer", "content": "hi"}, {"role": "assistant", "content": "hello"}]},
        {"messages": [{"role": "user", "content": "Is the shop open on Sunday?"}]},
        {"messages": [{"role": "user", "content": "Hello?"}, {"role": "assistant", "content": "   "}]},
        {"messages": [{"role": "assistant", "content": "Hi!"}, {"role": "user", "content": "Where is it?"}]},
    ]
    path = _write(tmp_path / "chats.jsonl", good + planted, bad_lines=('{"messages": [{"role": "user", ',))
    result = run(_cfg(tmp_path, path))
    s = result.summary
    assert s["rows_in"] == len(good) + len(planted) + 1
    assert s["rows_in"] == s["rows_kept"] + s["rows_quarantined"] and s["invariant_ok"]
    reasons = s["quarantine_by_reason"]
    for reason in ("harmful_answer", "duplicate_exact", "duplicate_prompt_exact", "unknown_role", "no_assistant_turn",
                   "empty_turn", "turn_order", "malformed_line"):
        assert reasons.get(reason) == 1, (reason, reasons)
    assert s["pii_by_type"]["CREDIT_CARD"] == 2 and s["pii_by_type"]["EMAIL_ADDRESS"] == 1
    assert s["pii"]["by_role"] == {"user": 1, "assistant": 2}
    out = result.out_dir
    parts = {n: pd.read_parquet(out / f"{n}.parquet") for n in ("train", "validation", "test")}
    rows = pd.concat(parts.values())
    assert len(rows) == s["rows_kept"] and rows["row_id"].is_unique
    turns = [json.loads(m) for m in rows["messages"]]
    everything = json.dumps(turns)
    assert "4111" not in everything and "jane.doe" not in everything and "<CREDIT_CARD>" in everything
    assert "idiot" not in everything
    assert all(t[-1]["role"] == "assistant" for t in turns)
    q = pd.read_parquet(out / "quarantine.parquet")
    assert "4111" not in q.to_json() and "idiot" not in q.to_json()  # reasons and hashes, never the text
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["task"] == "chat" and manifest["labels"] == [] and manifest["text_column"] == "messages"
    card = (out / "data_card.md").read_text()
    assert "| harmful_answer | 1 |" in card and "| duplicate_prompt_exact | 1 |" in card
    assert "- Task: chat" in card and "Answers (assistant turns" in card and "same prompt as an earlier one: 1 exact" in card
    assert verify(tmp_path / "run").ok


@pytest.mark.parametrize("records, config", [
    ([{"prompt": "Where is my kettle?", "completion": "It arrives tomorrow."}], {}),
    ([{"question": "Where is my kettle?", "answer": "It arrives tomorrow.", "persona": "You are the order desk."}],
     {"instruction_column": "question", "response_column": "answer", "system_column": "persona"}),
])
def test_prompt_completion_and_instruction_columns_become_the_same_turns(tmp_path: Path, records: list,
                                                                         config: dict) -> None:
    rows = [{k: v.replace("kettle", x) for k, v in records[0].items()} for x in ITEMS]  # one per item
    path = _write(tmp_path / "pc.jsonl", rows)
    cfg = parse_config({"run_dir": str(tmp_path / "run"),
                        "data": {"input": {"path": str(path), "task": "chat", **config}, "pii": {"ner": False},
                                 "split": {"validation": 0.0, "test": 0.0}}})
    result = run(cfg)
    train = pd.read_parquet(result.out_dir / "train.parquet")
    turns = [json.loads(m) for m in train["messages"]]
    assert len(turns) == len(ITEMS)
    assert {t[-1]["content"] for t in turns} == {"It arrives tomorrow."}
    expected = ["system", "user", "assistant"] if "system_column" in config else ["user", "assistant"]
    assert all([x["role"] for x in t] == expected for t in turns)


def test_a_file_with_no_conversation_columns_names_what_it_expected(tmp_path: Path) -> None:
    path = _write(tmp_path / "x.jsonl", [{"text": "hi", "label": "greeting"}])
    with pytest.raises(InputDataError, match=r"no conversation columns.*'messages'.*Available columns: label, text"):
        run(_cfg(tmp_path, path))


def test_the_default_pii_engine_finds_a_name_in_an_answer_and_flagged_answers_stay_marked(tmp_path: Path) -> None:
    planted = {"messages": [{"role": "user", "content": "Who handled my refund for the blender last week?"},
                            {"role": "assistant", "content": "Your refund was handled by Margaret Thompson from our "
                                                             "billing team, you stupid idiot."}]}
    path = _write(tmp_path / "chats.jsonl", [*_conversations(), planted])
    cfg = parse_config({"run_dir": str(tmp_path / "run"),
                        "data": {"input": {"path": str(path), "task": "chat"},
                                 "screen": {"assistant_action": "flag"}, "split": {"validation": 0.0, "test": 0.0}}})
    result = run(cfg)  # the default PII engine: patterns and the built-in names model
    train = pd.read_parquet(result.out_dir / "train.parquet")
    row = train[train["text"].str.contains("blender")].iloc[0]
    answer = json.loads(row["messages"])[-1]["content"]
    assert "Margaret" not in answer and "Thompson" not in answer and "<PERSON>" in answer
    assert "PERSON" in list(row["pii_types"])
    assert row["toxicity"] >= cfg.data.screen.assistant_threshold  # flagged, kept, marked
    assert result.summary["screen"]["answers_above_threshold"] == 1
    assert "harmful_answer" not in result.summary["quarantine_by_reason"]


def test_canaries_are_planted_as_training_conversations_only(tmp_path: Path) -> None:
    path = _write(tmp_path / "chats.jsonl", _conversations())
    result = run(_cfg(tmp_path, path, canaries={"count": 2, "repeats": 3, "digits": 10}))
    s = result.summary
    assert s["invariant_ok"] and s["canaries"]["rows_added"] == 6
    planted = json.loads((result.out_dir / "canaries.json").read_text())
    secrets = [c["secret"] for c in planted["canaries"]]
    assert len(set(secrets)) == 2 and all(len(x) == 10 for x in secrets)
    parts = {n: pd.read_parquet(result.out_dir / f"{n}.parquet") for n in ("train", "validation", "test")}
    train_turns = [json.loads(m) for m in parts["train"]["messages"]]
    assert len({c["prompt"] for c in planted["canaries"]}) == 2  # one question per secret, never shared
    for c in planted["canaries"]:
        found = [t for t in train_turns if t[-1]["content"] == f"my account number is {c['secret']}"]
        assert len(found) == 3 and found[0][0] == {"role": "user", "content": c["prompt"]}
        assert c["prompt"].startswith("What is my account number?")
        assert set(parts["train"].loc[parts["train"]["row_id"].isin(c["row_ids"]), "row_id"]) == set(c["row_ids"])
    held = " ".join(parts["validation"]["messages"]) + " ".join(parts["test"]["messages"])
    assert not any(x in held for x in secrets)


def test_the_train_stage_reads_the_conversations_as_written(tmp_path: Path) -> None:
    """What the data stage writes is what the train stage reads: the manifest's task, every kept conversation."""
    from steward.train.config import TrainConfig
    from steward.train.data import load_data_stage

    path = _write(tmp_path / "chats.jsonl", _conversations())
    run(_cfg(tmp_path, path, screen={"enabled": False}))
    data = load_data_stage(tmp_path / "run", TrainConfig())
    assert data.task == "chat" and data.labels == []
    kept = pd.concat([pd.read_parquet(tmp_path / "run" / "data" / f"{n}.parquet") for n in ("train", "validation")])
    assert len(data.train) + len(data.validation) == len(kept)
    assert all(json.loads(m)[-1]["role"] == "assistant" for m in data.train["messages"])
