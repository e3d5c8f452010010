"""Conversations: the records a chat model is fine-tuned on, read from the formats the ecosystem uses.

Three shapes come in (issue 20): a ``messages`` list of ``{"role", "content"}`` turns (the OpenAI and TRL
conversational format), ``prompt``/``completion`` (TRL's prompt-completion format, each either text or a
list of turns), and an instruction column with a response column (CSV, Parquet). Each becomes one
:class:`Conversation`, or a :class:`Problem` naming the quarantine reason and what was wrong, so one bad
record never stops the file. Checked here: the shape, the roles, empty turns, the order of turns, and that
there is an answer to learn from. The length after the chat template is checked where the tokenizer is
known (the train stage).

Written by hand: TRL and datasets accept these shapes but validate them only by failing later (a KeyError
in the chat template, or a silently masked-out example); a data stage has to say which record and why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Role = Literal["system", "user", "assistant"]
ROLES: tuple[str, ...] = ("system", "user", "assistant")
# Other names for a role that the formats in use write. OpenAI's newer API calls the system turn "developer".
ROLE_ALIASES: Mapping[str, str] = {"developer": "system", "human": "user", "gpt": "assistant", "bot": "assistant"}


@dataclass(frozen=True, slots=True)
class Turn:
    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class Conversation:
    """An optional system turn, then user and assistant turns alternating, ending with an assistant turn."""

    turns: tuple[Turn, ...]

    @property
    def prompt(self) -> tuple[Turn, ...]:
        """Everything before the last answer: what the model is given when it writes that answer."""
        return self.turns[:-1]

    @property
    def answers(self) -> tuple[Turn, ...]:
        return tuple(t for t in self.turns if t.role == "assistant")

    def to_messages(self) -> list[dict[str, str]]:
        return [{"role": t.role, "content": t.content} for t in self.turns]

    @classmethod
    def of(cls, messages: Sequence[Mapping[str, str]]) -> Conversation:
        """Turns already checked (as the data stage wrote them)."""
        return cls(tuple(Turn(m["role"], m["content"]) for m in messages))  # type: ignore[arg-type]


def transcript(turns: Sequence[Turn]) -> str:
    """The user and assistant turns as one plain text (``role: content`` per turn): what the quality, duplicate
    and leakage checks compare. System turns are left out: one persona shared by every conversation would make
    all of them look alike. The model sees every turn, through its own chat template."""
    return "\n".join(f"{t.role}: {t.content}" for t in turns if t.role != "system")


def shape_of(columns: set[str], messages: str, prompt_completion: tuple[str, str],
             instruction_response: tuple[str, str]) -> str | None:
    """Which of the three shapes a file's columns hold (the first that fits), or None."""
    if messages in columns:
        return "messages"
    if set(prompt_completion) <= columns:
        return "prompt_completion"
    if set(instruction_response) <= columns:
        return "instruction_response"
    return None


def from_record(rec: Mapping[str, Any], shape: str, columns: Mapping[str, str | None]) -> Conversation | Problem:
    """One record of a file of ``shape``; ``columns`` names the fields (messages, prompt, completion, …)."""
    if shape == "messages":
        return from_messages(rec.get(columns["messages"] or ""), columns["messages"] or "messages")
    if shape == "prompt_completion":
        p, c = columns["prompt"] or "prompt", columns["completion"] or "completion"
        return from_prompt_completion(rec.get(p), rec.get(c), (p, c))
    i, r = columns["instruction"] or "instruction", columns["response"] or "response"
    system = rec.get(columns["system"]) if columns.get("system") else None
    return from_columns(rec.get(i), rec.get(r), system, (i, r))


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a record is no conversation: a quarantine reason and a sentence a person can act on."""

    reason: str  # malformed_turn, unknown_role, empty_turn, turn_order, no_assistant_turn, missing_field
    detail: str


def from_messages(value: Any, field: str = "messages") -> Conversation | Problem:
    """A ``messages`` list (or its JSON text, as a CSV cell holds it) as a conversation."""
    if isinstance(value, str):
        import json

        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            return Problem("malformed_turn", f"{field} is text that is not JSON ({exc.msg}); write a list of "
                                             f'{{"role", "content"}} objects')
    if hasattr(value, "tolist"):  # a Parquet list column arrives as a numpy array
        value = value.tolist()
    if not isinstance(value, list) or not value:
        return Problem("missing_field" if value in (None, []) else "malformed_turn",
                       f"{field} must be a non-empty list of {{\"role\", \"content\"}} objects; got "
                       f"{type(value).__name__}")
    turns: list[Turn] = []
    for i, item in enumerate(value):
        turn = _turn(item, f"{field}[{i}]")
        if isinstance(turn, Problem):
            return turn
        turns.append(turn)
    return _checked(turns, field)


def from_prompt_completion(prompt: Any, completion: Any, fields: tuple[str, str] = ("prompt", "completion")
                           ) -> Conversation | Problem:
    """TRL's prompt-completion record: the prompt as text (one user turn) or a list of turns, the completion
    as text (one assistant turn) or a list of assistant turns."""
    turns: list[Turn] = []
    for value, field, role in ((prompt, fields[0], "user"), (completion, fields[1], "assistant")):
        side = _side(value, field, role)
        if isinstance(side, Problem):
            return side
        turns += side
    return _checked(turns, f"{fields[0]}+{fields[1]}")


def _side(value: Any, field: str, role: str) -> list[Turn] | Problem:
    if hasattr(value, "tolist"):  # a Parquet list column arrives as a numpy array
        value = value.tolist()
    if not isinstance(value, list):
        text = _text(value)
        if text is None:
            return Problem("missing_field", f"{field} is missing; every record needs a {field}")
        return [Turn(role, text)]  # type: ignore[arg-type]
    turns = []
    for i, item in enumerate(value):
        turn = _turn(item, f"{field}[{i}]")
        if isinstance(turn, Problem):
            return turn
        if role == "assistant" and turn.role != "assistant":
            return Problem("turn_order", f"{field}[{i}].role is {turn.role!r}; a completion holds the answer "
                                         f"(assistant turns) only")
        turns.append(turn)
    return turns


def from_columns(instruction: Any, response: Any, system: Any = None,
                 fields: tuple[str, str] = ("instruction", "response")) -> Conversation | Problem:
    """An instruction and its response (and an optional system text) as a one-exchange conversation."""
    turns = []
    system_text = _text(system)
    if system_text is not None and system_text.strip():
        turns.append(Turn("system", system_text))
    for value, field, role in ((instruction, fields[0], "user"), (response, fields[1], "assistant")):
        text = _text(value)
        if text is None:
            return Problem("missing_field", f"{field} is missing; every row needs a {field}")
        turns.append(Turn(role, text))  # type: ignore[arg-type]
    return _checked(turns, "/".join(fields))


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and value != value):  # None or NaN (an empty cell)
        return None
    return value if isinstance(value, str) else str(value)


def _turn(item: Any, where: str) -> Turn | Problem:
    if not isinstance(item, Mapping) or "role" not in item or "content" not in item:
        return Problem("malformed_turn", f'{where} must be an object with "role" and "content"; got '
                                         f"{str(item)[:60]!r}")
    role = str(item["role"]).strip().lower()
    role = ROLE_ALIASES.get(role, role)
    if role not in ROLES:
        return Problem("unknown_role", f"{where}.role is {item['role']!r}; use one of {', '.join(ROLES)} "
                                       f"(or {', '.join(ROLE_ALIASES)})")
    content = _content(item["content"])
    if content is None:
        return Problem("malformed_turn", f"{where}.content must be text (or a list of text parts); got "
                                         f"{type(item['content']).__name__}")
    return Turn(role, content)  # type: ignore[arg-type]


def _content(value: Any) -> str | None:
    """Text, or the OpenAI list of content parts when every part is text (joined); otherwise None."""
    if isinstance(value, str):
        return value
    if isinstance(value, Sequence) and value and all(
            isinstance(p, Mapping) and p.get("type") == "text" and isinstance(p.get("text"), str) for p in value):
        return "".join(p["text"] for p in value)
    return None


def _a(word: str) -> str:
    return "an" if word == "assistant" else "a"  # the three roles: only "assistant" takes "an"


def _checked(turns: list[Turn], field: str) -> Conversation | Problem:
    """The order rules: one optional system turn first, then user and assistant alternating from a user
    turn, ending with an answer; no empty turn."""
    for i, t in enumerate(turns):
        if not t.content.strip():
            return Problem("empty_turn", f"{field}: turn {i} ({t.role}) is empty; drop it or fill it in")
    body = turns[1:] if turns and turns[0].role == "system" else turns
    if not any(t.role == "assistant" for t in body):
        return Problem("no_assistant_turn", f"{field}: no assistant turn, so nothing to learn from; add the answer")
    for i, t in enumerate(body):
        expected = "user" if i % 2 == 0 else "assistant"
        if t.role != expected:
            at = i + (len(turns) - len(body))
            what = ("a second system turn" if t.role == "system" else
                    f"{_a(t.role)} {t.role} turn where {_a(expected)} {expected} turn belongs")
            return Problem("turn_order", f"{field}: turn {at} is {what}; turns go system (optional, first), "
                                         f"then user and assistant alternating")
    if body[-1].role != "assistant":
        return Problem("turn_order", f"{field}: the last turn is a user turn with no answer; end with the "
                                     f"assistant's answer or drop the last turn")
    return Conversation(tuple(turns))
