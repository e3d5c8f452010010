"""Chat fine-tuning of SmolLM2-135M-Instruct on real data, through Steward's own stages.

SST-2 as instructions: each sentence becomes a conversation, user "Review: <sentence>\\nSentiment:",
assistant "positive" or "negative"; the data stage (task chat) prepares it, the train stage fine-tunes it.

1. Accuracy on GLUE-dev (the 872 sentences of ../shared/data/sst2/test.tsv, never trained on) of the base
   model zero-shot with the same prompt, LoRA SFT, prompt tuning and DP-LoRA at ε = 8 — all on the same
   training conversations. A model's answer is the one of "positive" / "negative" it gives the higher
   log-likelihood after the assistant header (both are one token in SmolLM2's vocabulary, so this is the
   full answer's likelihood; lm-eval-harness scores multiple choice the same way).
2. Held-out loss and perplexity (answers only) of the base and the LoRA model on the data stage's held-out
   split of the training conversations.
3. Training speed side by side in one run, on the same model, rows, batch and LoRA settings: tokens/s
   (non-padding tokens per second of training) of Steward's SFT with and without length grouping, a plain
   hand-written PyTorch/transformers loop (random batches, the model's own loss on masked labels), TRL's
   SFTTrainer (prompt-completion data, its completion-only loss) if trl is installed, and DP-LoRA against
   the same Steward run without DP; each in a fresh process, with its peak memory (max RSS).

Run: `.venv/bin/python bench/bench_chat.py [--train-rows 2000] [--speed-rows 256]` (`make bench-chat`).
Writes bench/results/chat.{json,md}.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing as mp
import resource
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
PROMPT = "Review: {sentence}\nSentiment:"
ANSWER = {"1": "positive", "0": "negative"}
LORA = {"r": 16, "alpha": 32}
# DP-SGD at ε = 8 on 2,000 conversations: noise scales with the square root of the trainable parameters and
# falls with the logical batch, so the private run adapts far fewer weights (r 2 on q/v of the top 12 layers:
# 46k parameters), on Poisson batches of 256 for 6 epochs, at a higher rate. The three recipes measured
# (--dp-sweep reruns them; figures in docs/benchmarks.md):
DP_RECIPES = {
    "DP-LoRA r16 all layers, batch 16, 1 epoch, lr 2e-4 (the non-DP settings)": {
        "epochs": 1, "batch_size": 16, "lora": LORA},
    "DP-LoRA r16 top 10 layers, batch 128, 3 epochs, lr 2e-3": {
        "epochs": 3, "batch_size": 128, "learning_rate": 2e-3, "lora": {"r": 16, "alpha": 32, "layers": 10}},
    "DP-LoRA r8 q/v, batch 64, 2 epochs, lr 1e-3": {
        "epochs": 2, "batch_size": 64, "learning_rate": 1e-3,
        "lora": {"r": 8, "alpha": 16, "target_modules": ["q_proj", "v_proj"]}},
    "DP-LoRA r2 q/v top 12 layers, batch 256, 6 epochs, lr 5e-3": {
        "epochs": 6, "batch_size": 256, "learning_rate": 5e-3,
        "lora": {"r": 2, "alpha": 4, "layers": 12, "target_modules": ["q_proj", "v_proj"]}},
}
DP_BEST = "DP-LoRA r2 q/v top 12 layers, batch 256, 6 epochs, lr 5e-3"


def conversations(path: Path, train_rows: int, seed: int) -> Path:
    """SST-2 train (a seeded sample), dev (a held-out split of the same source) and GLUE-dev (test) as JSONL."""
    read = lambda name: pd.read_csv(SHARED / "sst2" / name, sep="\t", quoting=3, dtype=str)  # noqa: E731
    parts = {"train": read("train.tsv").sample(n=train_rows, random_state=seed),
             "validation": read("dev.tsv").sample(n=300, random_state=seed), "test": read("test.tsv")}
    with path.open("w", encoding="utf-8") as fh:
        for part, frame in parts.items():
            for sentence, label in zip(frame["sentence"], frame["label"], strict=True):
                fh.write(json.dumps({"part": part, "messages": [
                    {"role": "user", "content": PROMPT.format(sentence=sentence)},
                    {"role": "assistant", "content": ANSWER[label]}]}) + "\n")
    return path


def data_run(root: Path, train_rows: int, seed: int) -> Path:
    from steward.config import parse_config
    from steward.data import run as run_data

    run_dir = root / f"sst2_chat_{train_rows}"
    if (run_dir / "data" / "manifest.json").exists():
        return run_dir
    root.mkdir(parents=True, exist_ok=True)
    src = conversations(root / f"sst2_chat_{train_rows}.jsonl", train_rows, seed)
    # SST-2 repeats phrases and reviews of one film: near-duplicate prompts are real and kept
    run_data(parse_config({"run_dir": str(run_dir), "data": {
        "input": {"path": str(src), "task": "chat"}, "quality": {"min_chars": 1, "min_alpha_ratio": 0.0},
        "pii": {"ner": False}, "dedup": {"near": False}, "screen": {"enabled": False},
        "split": {"column": "part", "leakage": "report"}, "loss": {"allow": True}}}))
    return run_dir


def train(run_dir: Path, name: str, **settings: Any) -> dict[str, Any]:
    """A train-stage run in its own copy of the data run; the manifest."""
    import shutil

    from steward.config import parse_config
    from steward.train import run as run_train

    target = run_dir.parent / f"{run_dir.name}_{name}"
    if not (target / "train" / "manifest.json").exists():
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(run_dir, target, ignore=lambda d, n: {"train", "train_checkpoints", "mlruns"} & set(n))
        run_train(parse_config({"run_dir": str(target), "train": {
            "epochs": 1, "batch_size": 16, "max_length": 128, "mlflow": False, "use_sample_weights": False,
            "lora": LORA, **settings}}), progress=True)  # settings may replace any of these (DP recipes do)
    return {**json.loads((target / "train" / "manifest.json").read_text()), "run_dir": str(target)}


def accuracy(model: Any, tokenizer: Any, test: pd.DataFrame, batch: int = 32) -> float:
    """Share of GLUE-dev conversations whose gold answer the model scores above the other."""
    import torch

    ids = {a: tokenizer(a, add_special_tokens=False)["input_ids"] for a in ("positive", "negative")}
    assert all(len(v) == 1 for v in ids.values()), ids  # one token each: the first token is the whole answer
    pos, neg = ids["positive"][0], ids["negative"][0]
    prompts, gold = [], []
    for messages in test["messages"]:
        turns = json.loads(messages)
        prompts.append(tokenizer.apply_chat_template(turns[:1], add_generation_prompt=True, tokenize=False))
        gold.append(turns[1]["content"] == "positive")
    tokenizer.padding_side = "left"  # the next token's logits sit at the last position of every row
    right = 0
    model.eval()
    for k in range(0, len(prompts), batch):
        enc = tokenizer(prompts[k:k + batch], return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.no_grad():
            logits = model(**enc).logits[:, -1]
        right += sum(int((lp > ln) == g) for lp, ln, g in zip(logits[:, pos].tolist(), logits[:, neg].tolist(),
                                                               gold[k:k + batch], strict=True))
    return right / len(prompts)


def held_out(model: Any, tokenizer: Any, run_dir: Path) -> dict[str, float]:
    from steward.config import parse_config
    from steward.train.data import encode_conversations
    from steward.train.loop import evaluate_lm

    frame = pd.read_parquet(run_dir / "data" / "validation.parquet")
    cfg = parse_config({"train": {"max_length": 128}}).train
    examples, _ = encode_conversations(frame, tokenizer, cfg, "validation")
    return evaluate_lm(model, examples, tokenizer, batch_size=16)


def score(model_dir: Path, run_dir: Path, test: pd.DataFrame) -> dict[str, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from steward.inference import load_pretrained

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = load_pretrained(model_dir, AutoModelForCausalLM)
    out = {"accuracy": round(accuracy(model, tok, test), 4)}
    tok.padding_side = "right"
    figures = held_out(model, AutoTokenizer.from_pretrained(model_dir), run_dir)
    out.update(held_out_loss=round(figures["token_loss"], 4), perplexity=round(figures["perplexity"], 3))
    return out


# --- speed, each variant in a fresh process -------------------------------------------------------------

def _examples(run_dir: Path, rows: int) -> tuple[Any, list[dict[str, Any]]]:
    from transformers import AutoTokenizer

    from steward.offline_models import embedded_model_dir
    from steward.train.chat import encode_chat

    tok = AutoTokenizer.from_pretrained(embedded_model_dir())
    frame = pd.read_parquet(run_dir / "data" / "train.parquet").head(rows)
    out = []
    for messages in frame["messages"]:
        ex = encode_chat(tok, json.loads(messages))
        out.append({"input_ids": ex.input_ids, "labels": ex.labels, "messages": json.loads(messages)})
    return tok, out


def plain_loop(run_dir: Path, rows: int, batch: int, seed: int) -> float:
    """What a user writes by hand: the same masked labels, random batches padded to their longest row, the
    model's own loss (full logits), AdamW with linear warm-up and clipping."""
    import torch
    from peft import LoraConfig, TaskType, get_peft_model
    from torch.utils.data import DataLoader
    from transformers import AutoModelForCausalLM, get_linear_schedule_with_warmup

    from steward.offline_models import embedded_model_dir

    torch.manual_seed(seed)
    tok, examples = _examples(run_dir, rows)
    model = AutoModelForCausalLM.from_pretrained(embedded_model_dir())
    model = get_peft_model(model, LoraConfig(r=LORA["r"], lora_alpha=LORA["alpha"], lora_dropout=0.1,
                                             target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                                             "up_proj", "down_proj"], task_type=TaskType.CAUSAL_LM))

    def collate(rows_: list[dict[str, Any]]) -> dict[str, Any]:
        width = max(len(r["input_ids"]) for r in rows_)
        ids = torch.full((len(rows_), width), tok.pad_token_id)
        labels = torch.full((len(rows_), width), -100)
        mask = torch.zeros((len(rows_), width), dtype=torch.long)
        for i, r in enumerate(rows_):
            n = len(r["input_ids"])
            ids[i, :n], labels[i, :n], mask[i, :n] = torch.tensor(r["input_ids"]), torch.tensor(r["labels"]), 1
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}

    loader = DataLoader(examples, batch_size=batch, shuffle=True, collate_fn=collate,
                        generator=torch.Generator().manual_seed(seed))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4, weight_decay=0.01)
    sched = get_linear_schedule_with_warmup(opt, int(0.06 * len(loader)), len(loader))
    model.train()
    tokens, t0 = 0, time.perf_counter()
    for b in loader:
        model(**b).loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
        tokens += int(b["attention_mask"].sum())
    return tokens / (time.perf_counter() - t0)


def trl_loop(run_dir: Path, rows: int, batch: int, seed: int) -> float:
    """TRL's SFTTrainer on the same rows in its prompt-completion format (completion-only loss)."""
    import datasets
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    from steward.offline_models import embedded_model_dir

    tok, examples = _examples(run_dir, rows)
    ds = datasets.Dataset.from_list([{"prompt": e["messages"][:1], "completion": e["messages"][1:]}
                                     for e in examples])
    args = SFTConfig(output_dir=str(run_dir.parent / "trl_out"), per_device_train_batch_size=batch,
                     num_train_epochs=1, learning_rate=2e-4, logging_steps=10_000, save_strategy="no",
                     report_to=[], seed=seed, max_length=128, use_cpu=True, dataloader_num_workers=0,
                     # the same arithmetic as the other rows: fp32, no activation recomputation (TRL's
                     # defaults turn on bf16 autocast and gradient checkpointing, both slow on this CPU)
                     bf16=False, fp16=False, gradient_checkpointing=False)
    trainer = SFTTrainer(model=AutoModelForCausalLM.from_pretrained(embedded_model_dir()), args=args,
                         train_dataset=ds, processing_class=tok,
                         peft_config=LoraConfig(r=LORA["r"], lora_alpha=LORA["alpha"], lora_dropout=0.1,
                                                target_modules="all-linear", task_type="CAUSAL_LM"))
    tokens = sum(len(e["input_ids"]) for e in examples)
    t0 = time.perf_counter()
    trainer.train()
    return tokens / (time.perf_counter() - t0)


def steward_loop(run_dir: Path, rows: int, batch: int, seed: int, **settings: Any) -> float:
    import shutil

    from steward.config import parse_config
    from steward.train import run as run_train

    target = run_dir.parent / f"{run_dir.name}_speed"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(run_dir, target, ignore=lambda d, n: {"train", "train_checkpoints", "mlruns"} & set(n))
    cfg = parse_config({"run_dir": str(target), "train": {
        "method": "lora", "lora": LORA, "epochs": 1, "batch_size": batch, "max_length": 128, "mlflow": False,
        "max_train_samples": rows, "max_eval_samples": 32, "use_sample_weights": False, "seed": seed,
        **settings}})
    return float(run_train(cfg).manifest["tokens_per_second"])


def _peak_rss_mib() -> float:
    """This process's own peak RSS (VmHWM). ru_maxrss is not: a spawned child starts with the high-water
    mark of the parent it was forked from, so every row would show the parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(queue: Any, fn: str, args: tuple[Any, ...], kw: dict[str, Any]) -> None:
    try:  # reset the high-water mark inherited across fork+exec (Linux; "5" resets VmHWM)
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    rate = globals()[fn](*args, **kw)
    queue.put((rate, _peak_rss_mib()))


def isolated(fn: str, *args: Any, **kw: Any) -> tuple[float, float]:
    """(tokens/s, peak RSS in MiB) of one variant run in a fresh process."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(queue, fn, args, kw))
    proc.start()
    out = queue.get()
    proc.join()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train-rows", type=int, default=2000)
    ap.add_argument("--speed-rows", type=int, default=256)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--skip-accuracy", action="store_true")
    ap.add_argument("--dp-sweep", action="store_true", help="also train the other DP recipes (about 20 min each)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/steward_bench_chat"))
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "chat.json")
    args = ap.parse_args()
    run_dir = data_run(args.work, args.train_rows, seed=13)
    result: dict[str, Any] = {"train_rows": args.train_rows, "speed_rows": args.speed_rows, "batch": args.batch}
    if args.skip_accuracy and args.out.exists():  # keep the accuracy table of an earlier run
        result["accuracy"] = json.loads(args.out.read_text()).get("accuracy", {})
    if not args.skip_accuracy:
        from steward.offline_models import embedded_model_dir

        test = pd.read_parquet(run_dir / "data" / "test.parquet")
        acc = {"base SmolLM2-135M-Instruct, zero-shot": score(embedded_model_dir(), run_dir, test)}
        private = {"method": "lora", "privacy": {"enabled": True, "target_epsilon": 8.0}}
        runs = [("LoRA SFT", {"method": "lora"}), ("prompt tuning", {"method": "prompt"}),
                (f"{DP_BEST}, ε = 8", {**private, **DP_RECIPES[DP_BEST]})]
        if args.dp_sweep:
            runs += [(f"{k}, ε = 8", {**private, **v}) for k, v in DP_RECIPES.items() if k != DP_BEST]
        for label, settings in runs:
            name = ("dp_" + hashlib.sha256(label.encode()).hexdigest()[:8] if "DP" in label
                    else label.replace(" ", "_").lower())
            m = train(run_dir, name, **settings)
            acc[label] = {**score(Path(m["run_dir"]) / "train" / "model", run_dir, test),
                          "trainable": m["parameters"]["trainable"], "seconds": m["seconds"],
                          "epsilon": (m["privacy"] or {}).get("epsilon")}
            print(label, acc[label], flush=True)
        result["accuracy"] = acc
    speed: dict[str, tuple[float, float]] = {}
    common = (run_dir, args.speed_rows, args.batch, 13)
    speed["plain PyTorch/transformers loop, random batches"] = isolated("plain_loop", *common)
    speed["steward, random batches (group_by_length off)"] = isolated("steward_loop", *common, group_by_length=False)
    speed["steward, default (length-grouped)"] = isolated("steward_loop", *common)
    try:
        import trl  # noqa: F401

        speed["TRL SFTTrainer (completion-only loss)"] = isolated("trl_loop", *common)
    except ImportError:
        print("trl is not installed: its row is left out (pip install -e '.[bench]')")
    speed["steward, DP-LoRA ε = 8 (length-sorted physical batches)"] = isolated(
        "steward_loop", *common, privacy={"enabled": True, "target_epsilon": 8.0})
    plain = speed["plain PyTorch/transformers loop, random batches"][0]
    nodp = speed["steward, default (length-grouped)"][0]
    result["speed"] = [{"run": k, "tokens_per_second": round(v, 1), "peak_rss_mib": round(m),
                        "ratio": round(v / (nodp if "DP" in k else plain), 3),
                        "against": "steward without DP" if "DP" in k else "plain loop"}
                       for k, (v, m) in speed.items()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    md = []
    if "accuracy" in result:
        md += ["| model | GLUE-dev accuracy | held-out loss | perplexity | trainable | ε |", "|---|---|---|---|---|---|"]
        md += [f"| {k} | {v['accuracy']} | {v['held_out_loss']} | {v['perplexity']} | {v.get('trainable', '—')} | "
               f"{v.get('epsilon') or '—'} |" for k, v in result["accuracy"].items()]
        md.append("")
    md += ["| run | tokens/s | ratio | against | peak RSS MiB |", "|---|---|---|---|---|"]
    md += [f"| {r['run']} | {r['tokens_per_second']} | {r['ratio']} | {r['against']} | {r['peak_rss_mib']} |"
           for r in result["speed"]]
    args.out.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
