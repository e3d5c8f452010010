"""Answer-only labels for chat fine-tuning, token by token on the real SmolLM2 tokenizer (its template has no
generation markers, and its pad token is its EOS)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from steward.errors import TrainStageError
from steward.train.chat import IGNORE, encode_chat

CONVERSATION = [{"role": "system", "content": "You answer for Northwind's order desk."},
                {"role": "user", "content": "Where is order 1182?"},
                {"role": "assistant", "content": "It left the depot this morning."},
                {"role": "user", "content": "And the invoice?"},
                {"role": "assistant", "content": "It is in your account, under Billing."}]


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    from transformers import AutoTokenizer

    from steward.offline_models import embedded_model_dir

    return AutoTokenizer.from_pretrained(embedded_model_dir())


def _labelled_runs(ex: Any, tokenizer: Any) -> list[str]:
    """The labelled tokens, decoded run by run."""
    runs: list[list[int]] = []
    for i, lab in enumerate(ex.labels):
        if lab == IGNORE:
            continue
        if i == 0 or ex.labels[i - 1] == IGNORE:
            runs.append([])
        runs[-1].append(lab)
    return [tokenizer.decode(r) for r in runs]


def test_only_the_answers_and_their_end_of_turn_tokens_are_labelled(tokenizer: Any) -> None:
    assert tokenizer.pad_token_id == tokenizer.eos_token_id  # the case that masks EOS out in naive collators
    ex = encode_chat(tokenizer, CONVERSATION)
    assert _labelled_runs(ex, tokenizer) == ["It left the depot this morning.<|im_end|>",
                                             "It is in your account, under Billing.<|im_end|>"]
    assert ex.labels.count(tokenizer.eos_token_id) == 2  # the model is taught to stop after each answer
    assert len(ex.input_ids) == len(ex.labels)


def test_every_token_is_labelled_exactly_when_it_lies_inside_an_answer(tokenizer: Any) -> None:
    ex = encode_chat(tokenizer, CONVERSATION)
    offsets = tokenizer(ex.text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    assert tokenizer(ex.text, add_special_tokens=False)["input_ids"] == ex.input_ids  # nothing appended: EOS is there
    for tok, lab, (start, end) in zip(ex.input_ids, ex.labels, offsets, strict=True):
        inside = any(start < e and end > s for s, e in ex.answer_chars)  # the token overlaps an answer
        assert (lab == tok) == inside and (lab == IGNORE) == (not inside), (tokenizer.decode([tok]), start, end)
    for s, e in ex.answer_chars:
        assert ex.text[s:e].endswith("<|im_end|>") and "<|im_start|>" not in ex.text[s:e]
    context = "".join(ex.text[: ex.answer_chars[0][0]])
    assert "Where is order 1182?" in context and "Northwind" in context


def test_the_prompt_text_is_never_a_target_even_when_an_answer_repeats_it(tokenizer: Any) -> None:
    echo = copy.deepcopy(CONVERSATION[:3])
    echo[2]["content"] = "Where is order 1182? It left the depot."
    ex = encode_chat(tokenizer, echo)
    assert _labelled_runs(ex, tokenizer) == ["Where is order 1182? It left the depot.<|im_end|>"]  # once, the answer


def test_a_template_without_an_end_token_gets_eos_appended_and_labelled(tokenizer: Any, tmp_path: Path) -> None:
    plain = copy.deepcopy(tokenizer)
    plain.chat_template = ("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
                           "{% if add_generation_prompt %}assistant: {% endif %}")
    ex = encode_chat(plain, CONVERSATION[1:3])
    assert ex.input_ids[-1] == plain.eos_token_id and ex.labels[-1] == plain.eos_token_id
    assert plain.decode([x for x in ex.labels if x != IGNORE]).strip() == "It left the depot this morning.<|im_end|>"


def test_a_tokenizer_without_a_chat_template_or_a_too_long_conversation_is_refused(tokenizer: Any) -> None:
    bare = copy.deepcopy(tokenizer)
    bare.chat_template = None
    with pytest.raises(TrainStageError, match="no chat template"):
        encode_chat(bare, CONVERSATION)
    with pytest.raises(TrainStageError, match=r"above train.max_length 16"):
        encode_chat(tokenizer, CONVERSATION, max_length=16)
