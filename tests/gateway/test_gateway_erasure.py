"""Erasure by subject through the chat gateway: the real OpenAI client names the end user in ``user`` (as the
OpenAI API asks), and `steward audit erase --subject` erases every turn about them, streamed ones included."""

from __future__ import annotations

import json
from collections.abc import Callable

from typer.testing import CliRunner

from steward.cli.app import app as cli
from steward.gateway.backends import LocalBackend


def test_the_turns_of_one_user_are_erased_together(tiny_chat: LocalBackend, gateway_factory: Callable) -> None:
    gw = gateway_factory(tiny_chat)
    client = gw.client()
    said = "My card is 4111 1111 1111 1111 and my name is Jane Doe"
    first = client.chat.completions.create(model="tiny-chat", messages=[{"role": "user", "content": said}],
                                           max_tokens=4, user="end-user-17")
    stream = client.chat.completions.create(model="tiny-chat", messages=[{"role": "user", "content": "and again"}],
                                            max_tokens=4, user="end-user-17", stream=True)
    streamed_id = next(iter(stream)).id
    for _ in stream:
        pass
    other = client.chat.completions.create(model="tiny-chat", messages=[{"role": "user", "content": "hello"}],
                                           max_tokens=4, user="end-user-18")
    r = CliRunner().invoke(cli, ["audit", "erase", "--subject", "end-user-17", "--run-dir", str(gw.run_dir), "--json"])
    assert r.exit_code == 0, r.output
    decision = {c: c.removeprefix("chatcmpl-") for c in (first.id, streamed_id, other.id)}
    assert set(json.loads(r.output)["decisions"]) == {decision[first.id], decision[streamed_id]}
    rows = {row["decision_id"]: row for row in gw.audit.records()}
    assert rows[decision[first.id]].get("erased") and rows[decision[streamed_id]].get("erased")
    kept = rows[decision[other.id]]
    assert not kept.get("erased") and "hello" in kept["redacted_input"]
    assert gw.audit.verify().ok
    # one turn by the id the OpenAI client shows: erasing it again reports it erased already
    again = CliRunner().invoke(cli, ["audit", "erase", "--decision-id", first.id, "--run-dir", str(gw.run_dir),
                                     "--json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.output)["decision_id"] == decision[first.id]
