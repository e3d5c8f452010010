"""Conversations from the three input shapes (issue 20): each good record becomes the same turns, each bad one a
named quarantine reason with a sentence that says what to fix."""

from __future__ import annotations

import json

import numpy as np
import pytest

from steward.data.conversations import Conversation, Problem, Turn, from_columns, from_messages, from_prompt_completion

SUPPORT = [{"role": "system", "content": "You help with orders."},
           {"role": "user", "content": "Where is my parcel?"},
           {"role": "assistant", "content": "It left the depot this morning."},
           {"role": "user", "content": "Thanks, and the invoice?"},
           {"role": "assistant", "content": "It is in your account."}]


def test_a_messages_list_keeps_every_turn_in_order() -> None:
    conv = from_messages(SUPPORT)
    assert isinstance(conv, Conversation)
    assert conv.to_messages() == SUPPORT
    assert [t.role for t in conv.prompt] == ["system", "user", "assistant", "user"]
    assert [t.content for t in conv.answers] == ["It left the depot this morning.", "It is in your account."]


@pytest.mark.parametrize("value", [
    json.dumps(SUPPORT),  # a CSV cell holds the list as JSON text
    np.array(SUPPORT, dtype=object),  # a Parquet list column
])
def test_messages_as_json_text_or_an_array_read_the_same(value: object) -> None:
    assert from_messages(value) == from_messages(SUPPORT)


def test_role_aliases_and_text_parts_are_read_as_written_elsewhere() -> None:
    conv = from_messages([{"role": "developer", "content": "Be brief."},
                          {"role": "Human", "content": [{"type": "text", "text": "Hi "}, {"type": "text", "text": "there"}]},
                          {"role": "gpt", "content": "Hello."}])
    assert isinstance(conv, Conversation)
    assert conv.turns == (Turn("system", "Be brief."), Turn("user", "Hi there"), Turn("assistant", "Hello."))


@pytest.mark.parametrize("value, reason, says", [
    (None, "missing_field", "non-empty list"),
    ([], "missing_field", "non-empty list"),
    ("[{'role': 'user'", "malformed_turn", "not JSON"),
    ({"role": "user", "content": "hi"}, "malformed_turn", "got dict"),
    ([{"role": "user", "text": "hi"}], "malformed_turn", 'messages[0] must be an object with "role" and "content"'),
    ([{"role": "customer", "content": "hi"}, {"role": "assistant", "content": "hello"}], "unknown_role",
     "messages[0].role is 'customer'; use one of system, user, assistant"),
    ([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}], "malformed_turn",
     "messages[0].content must be text"),
    ([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "  \n"}], "empty_turn",
     "turn 1 (assistant) is empty"),
    ([{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}], "no_assistant_turn", "nothing to learn"),
    ([{"role": "assistant", "content": "hello"}, {"role": "user", "content": "hi"}], "turn_order",
     "turn 0 is an assistant turn where a user turn belongs"),
    ([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}, {"role": "assistant", "content": "c"}],
     "turn_order", "turn 1 is a user turn where an assistant turn belongs"),
    ([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "system", "content": "c"}],
     "turn_order", "turn 2 is a second system turn"),
    ([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}],
     "turn_order", "the last turn is a user turn with no answer"),
])
def test_a_bad_messages_record_is_a_named_problem(value: object, reason: str, says: str) -> None:
    problem = from_messages(value)
    assert isinstance(problem, Problem), problem
    assert problem.reason == reason and says in problem.detail, problem


def test_prompt_completion_as_text_or_as_turns() -> None:
    plain = from_prompt_completion("Where is my parcel?", "It left the depot.")
    assert isinstance(plain, Conversation)
    assert plain.turns == (Turn("user", "Where is my parcel?"), Turn("assistant", "It left the depot."))
    turns = from_prompt_completion(SUPPORT[:4], [SUPPORT[4]])
    assert turns == from_messages(SUPPORT)


@pytest.mark.parametrize("prompt, completion, reason, says", [
    ("Where is it?", None, "missing_field", "completion is missing"),
    (float("nan"), "Here.", "missing_field", "prompt is missing"),
    ("Where is it?", [{"role": "user", "content": "x"}], "turn_order", "completion[0].role is 'user'"),
    ([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}], "Here.", "turn_order", "turn 1"),
    ("", "Here.", "empty_turn", "turn 0 (user) is empty"),
])
def test_a_bad_prompt_completion_record_is_a_named_problem(prompt: object, completion: object, reason: str,
                                                           says: str) -> None:
    problem = from_prompt_completion(prompt, completion)
    assert isinstance(problem, Problem) and problem.reason == reason and says in problem.detail, problem


def test_instruction_and_response_columns_with_an_optional_system_text() -> None:
    conv = from_columns("Cancel my plan", "Done: it ends on the 30th.", system="You are the billing desk.")
    assert isinstance(conv, Conversation)
    assert [t.role for t in conv.turns] == ["system", "user", "assistant"]
    assert from_columns("Cancel my plan", "Done.", system=float("nan")).turns[0].role == "user"  # empty cell
    missing = from_columns("Cancel my plan", None, fields=("question", "answer"))
    assert isinstance(missing, Problem) and missing.reason == "missing_field" and "answer is missing" in missing.detail
