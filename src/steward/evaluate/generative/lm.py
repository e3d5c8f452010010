"""A causal LM as the generative probes use it: the log-likelihood of a continuation after a prefix, the
answer loss of encoded conversations, and greedy generation — batched, in a fixed order, no sampling, so the
fine-tuned model and its base are asked exactly the same thing."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from steward.inference import check_weights, load_pretrained


@dataclass
class ChatLM:
    """A loaded causal LM, its tokenizer and where it came from."""

    model: Any
    tokenizer: Any
    label: str  # "fine-tuned" or "base"
    path: Path
    weights_sha256: dict[str, str]
    # Greedy answers already generated, by (prompt ids, max new tokens): probes that ask the same prompts (the
    # safety and toxicity probes both read the XSTest answers) generate each once.
    _answers: dict[tuple[tuple[int, ...], int], str] = field(default_factory=dict, init=False, repr=False)

    @classmethod
    def load(cls, path: Path, *, label: str, expected: dict[str, str] | None = None) -> ChatLM:
        """Load ``path`` (hash-checked against ``expected`` when given) for scoring on CPU."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        hashes = check_weights(path, expected or None)
        model = load_pretrained(path, AutoModelForCausalLM)
        model.eval()
        tokenizer = AutoTokenizer.from_pretrained(path)
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        return cls(model, tokenizer, label, Path(path), hashes)

    # --- encoding ------------------------------------------------------------------------------------------

    def prompt_ids(self, messages: list[dict[str, str]]) -> list[int]:
        """The conversation so far, rendered with the chat template up to the assistant's turn."""
        out = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        return list(out["input_ids"] if isinstance(out, dict) or hasattr(out, "keys") else out)

    def text_ids(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    @property
    def start_id(self) -> int:
        """The token a bare sentence is scored after (lm-eval-harness's prefix token: BOS, else EOS)."""
        tok = self.tokenizer
        return int(tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id)

    @property
    def end_ids(self) -> list[int]:
        """Token ids that end an answer: the tokenizer's EOS and the generation config's."""
        ids = {self.tokenizer.eos_token_id}
        gen = getattr(self.model, "generation_config", None)
        eos = getattr(gen, "eos_token_id", None)
        ids |= set(eos if isinstance(eos, list) else [eos])
        return sorted(int(i) for i in ids if i is not None)

    # --- scoring -------------------------------------------------------------------------------------------

    def logprobs(self, pairs: Sequence[tuple[list[int], list[int]]], batch_size: int
                 ) -> tuple[np.ndarray, np.ndarray]:
        """(sum of log p, number of tokens) of each continuation after its prefix.

        Batched by length (shortest first) with right padding; only the continuation positions go through the
        softmax, so a 49k-token vocabulary costs little."""
        import torch

        sums, counts = np.zeros(len(pairs)), np.zeros(len(pairs), dtype=int)
        order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))
        pad = self.tokenizer.pad_token_id
        for k in range(0, len(order), batch_size):
            idx = order[k:k + batch_size]
            rows = [pairs[i][0] + pairs[i][1] for i in idx]
            width = max(len(r) for r in rows)
            ids = torch.full((len(rows), width), pad, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for j, r in enumerate(rows):
                ids[j, :len(r)], mask[j, :len(r)] = torch.tensor(r), 1
            with torch.inference_mode():
                logits = self.model(input_ids=ids, attention_mask=mask).logits
            for j, i in enumerate(idx):
                prefix, cont = pairs[i]
                if not cont:
                    continue
                start = len(prefix) - 1  # the logits at position t predict token t + 1
                step = torch.log_softmax(logits[j, start:start + len(cont)].float(), dim=-1)
                sums[i] = float(step.gather(1, torch.tensor(cont).unsqueeze(1)).sum())
                counts[i] = len(cont)
        return sums, counts

    def answer_nll(self, examples: list[dict[str, Any]], batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """(summed negative log-likelihood, answer tokens) of each encoded conversation, on its answers only
        — the train stage's loss, per conversation."""
        import torch
        from torch.utils.data import DataLoader

        from steward.train.loop import collate, model_inputs_for, token_losses

        loader = DataLoader(examples, batch_size=batch_size, shuffle=False, collate_fn=collate(self.tokenizer, "chat"))
        inputs = model_inputs_for("chat")
        nll, tokens = [], []
        for batch in loader:
            with torch.inference_mode():
                per_tok, valid = token_losses(self.model(**inputs(batch)).logits, batch["labels"], "chat")
            nll.extend((per_tok * valid).sum(1).tolist())
            tokens.extend(valid.sum(1).tolist())
        return np.asarray(nll, dtype=float), np.asarray(tokens, dtype=float)

    # --- generation ----------------------------------------------------------------------------------------

    def generate(self, prompts: Sequence[list[int]], max_new_tokens: int, batch_size: int, *,
                 reuse: bool = True, exact: bool = False) -> list[str]:
        """Greedy answers to encoded prompts (left-padded batches, shortest first), special tokens removed;
        a prompt answered before (same length limit) is not generated again unless ``reuse`` is off. ``exact``
        (timing): every answer is exactly ``max_new_tokens`` long, EOS ignored, so every model does equal work."""
        reuse = reuse and not exact
        import torch

        keys = [(tuple(p), max_new_tokens) for p in prompts]
        todo: dict[tuple[tuple[int, ...], int], int] = {}
        for i, k in enumerate(keys):
            if not reuse or k not in self._answers:
                todo.setdefault(k, i)
        order = sorted(todo.values(), key=lambda i: len(prompts[i]))
        pad = self.tokenizer.pad_token_id
        for k in range(0, len(order), batch_size):
            idx = order[k:k + batch_size]
            width = max(len(prompts[i]) for i in idx)
            ids = torch.full((len(idx), width), pad, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for j, i in enumerate(idx):
                n = len(prompts[i])
                ids[j, width - n:], mask[j, width - n:] = torch.tensor(prompts[i]), 1
            with torch.inference_mode():
                gen = self.model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                                          do_sample=False, num_beams=1, pad_token_id=pad,
                                          eos_token_id=self.end_ids,
                                          min_new_tokens=max_new_tokens if exact else None)
            for j, i in enumerate(idx):
                self._answers[keys[i]] = self.tokenizer.decode(gen[j, width:], skip_special_tokens=True).strip()
        return [self._answers[k] for k in keys]

    def timed_generation(self, prompt: list[int], new_tokens: int) -> tuple[float, float]:
        """(seconds to the first token, seconds per further token) of one greedy answer of exactly
        ``new_tokens`` tokens at batch 1 (EOS ignored, so every model does the same work)."""
        import torch

        ids = torch.tensor([prompt])
        kw = {"do_sample": False, "pad_token_id": self.tokenizer.pad_token_id}
        with torch.inference_mode():
            t0 = time.perf_counter()
            self.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=1, **kw)
            first = time.perf_counter() - t0
            t0 = time.perf_counter()
            self.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens,
                                min_new_tokens=new_tokens, **kw)
            total = time.perf_counter() - t0
        return first, max(total - first, 0.0) / max(new_tokens - 1, 1)
