"""Supervised fine-tuning examples for a causal LM: the conversation through the model's own chat template,
with labels on the answers only.

The loss is on the assistant turns and nothing else (the system prompt and the user turns are context, not
targets). Templates such as SmolLM2's have no ``{% generation %}`` markers, so
``apply_chat_template(return_assistant_tokens_mask=True)`` cannot be used; instead each answer's characters
are located by rendering the conversation up to that answer twice (with the generation prompt, and with
the answer) and the tokens whose offsets fall between the two are labelled. Each answer's label runs to and
includes the end-of-turn token, so the model learns to stop; labels are built per example before any
padding, so a pad token equal to EOS (SmolLM2: both ``<|im_end|>``) never masks the EOS out — the failure
most often reported against TRL's collators (huggingface/trl #976, #2059: labels masked by ``input_ids ==
pad_token_id``). The span rule is the one allenai/open-instruct's ``_tokenize_tulu_sft_with_assistant_labels``
uses (read, not copied): a token that overlaps an answer's characters is a target.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from steward.errors import TrainStageError

IGNORE = -100  # the label PyTorch's cross-entropy skips


@dataclass(frozen=True)
class ChatExample:
    """One tokenised conversation: ``labels[i]`` is ``input_ids[i]`` on answer tokens and IGNORE elsewhere."""

    input_ids: list[int]
    labels: list[int]
    answer_chars: tuple[tuple[int, int], ...]  # each answer's span in ``text`` (content and end-of-turn token)
    text: str  # the conversation as the template renders it

    @property
    def answer_tokens(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE)


def encode_chat(tokenizer: Any, messages: Sequence[dict[str, str]], max_length: int | None = None) -> ChatExample:
    """``messages`` (system?, user, assistant, …, ending with an assistant turn) as one training example."""
    msgs = [dict(m) for m in messages]
    text = _render(tokenizer, msgs, generation_prompt=False)
    spans = tuple(_answer_span(tokenizer, msgs, k, text) for k, m in enumerate(msgs) if m["role"] == "assistant")
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = list(enc["input_ids"]), list(enc["offset_mapping"])
    # A token that overlaps an answer is a target: byte-level tokenizers glue the space before the first word
    # to it (" It"), so that token starts one character before the answer does.
    labels = [tok if any(start < e and end > s for s, e in spans) else IGNORE
              for tok, (start, end) in zip(ids, offsets, strict=True)]
    if tokenizer.eos_token_id is not None and not _ends_answer_with_eos(ids, labels, tokenizer.eos_token_id):
        ids, labels = [*ids, tokenizer.eos_token_id], [*labels, tokenizer.eos_token_id]  # a template with no end token
    if max_length is not None and len(ids) > max_length:
        raise TrainStageError(f"the conversation is {len(ids)} tokens after the chat template, above "
                              f"train.max_length {max_length}; the data stage quarantines such rows "
                              f"(context_too_long), or raise train.max_length")
    return ChatExample(ids, labels, spans, text)


def _render(tokenizer: Any, messages: list[dict[str, str]], generation_prompt: bool) -> str:
    if not getattr(tokenizer, "chat_template", None):
        raise TrainStageError("the tokenizer has no chat template, so a conversation cannot be rendered the way "
                              "the model was trained to read it. Fix: use an instruction-tuned model (e.g. the "
                              "default SmolLM2-135M-Instruct) or set train.tokenizer to one with a chat template")
    return str(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt))


def _answer_span(tokenizer: Any, messages: list[dict[str, str]], k: int, full: str) -> tuple[int, int]:
    """The characters of answer ``k`` in ``full``: after the prompt up to it, through its end-of-turn token."""
    before = _render(tokenizer, messages[:k], generation_prompt=True)
    through = _render(tokenizer, messages[: k + 1], generation_prompt=False)
    if not (through.startswith(before) and full.startswith(through)):
        raise TrainStageError("the chat template renders a conversation's beginning differently from the whole "
                              "conversation, so the answers' tokens cannot be located for answer-only loss. Fix: "
                              "use a model whose template renders turns in order (ChatML, Llama, Mistral)")
    end = len(through)
    eos = tokenizer.eos_token
    if eos and eos in through[len(before):]:
        end = through.index(eos, len(before)) + len(eos)  # through the end-of-turn token, not the newline after
    else:
        end = len(through.rstrip())
    return len(before), end


def _ends_answer_with_eos(ids: list[int], labels: list[int], eos_id: int) -> bool:
    last = max((i for i, x in enumerate(labels) if x != IGNORE), default=-1)
    return last >= 0 and ids[last] == eos_id
