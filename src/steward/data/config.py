"""The data stage's config: reading, normalising, de-duplicating, PII, screening, balancing, splitting."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Protocol, get_args

from pydantic import Field, field_validator, model_validator

from steward.config_base import StageConfig

PIIEntity = Literal["PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "US_SSN", "IP_ADDRESS",
                    "URL", "STREET_ADDRESS"]
PII_ENTITIES: tuple[str, ...] = get_args(PIIEntity)  # the one list of names is the Literal's
PIIAction = Literal["redact", "mask", "pseudonymise", "drop", "flag"]
TaggedAction = Literal["pseudonymise", "redact", "keep"]
# What PII detection may rewrite in the untagged (O) tokens of NER data by default: types found by patterns
# with validators. Names, places and addresses in news text are the entities the tags teach (or false
# positives on tables of prices and dates), so fuzzy detectors are off there unless listed.
NER_UNTAGGED_DEFAULT = ("EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "US_SSN", "IP_ADDRESS")


class InputConfig(StageConfig):
    """Where the raw data is and how to read it."""

    path: Path | None = None
    format: Literal["auto", "csv", "tsv", "jsonl", "parquet", "conll"] = "auto"
    # chat: conversations to fine-tune a chat model on (messages, prompt/completion, or instruction/response)
    task: Literal["classification", "ner", "chat"] = "classification"
    text_column: str = "text"
    label_column: str = "label"
    group_columns: list[str] = Field(default_factory=list)
    labels: list[str] | None = None  # the declared label set; rows with other labels are quarantined
    id_column: str | None = None  # keep the user's row id; default: position in the file
    encoding: str = "auto"  # auto: UTF-8 if it decodes, else detected (charset-normalizer); or e.g. latin-1
    # NER JSONL layout: one object per line with a token list and a tag list.
    tokens_column: str = "tokens"
    tags_column: str = "tags"
    # Chat: the first shape whose columns the file has — a list of {role, content} turns (OpenAI/TRL
    # conversational); TRL's prompt and completion (text or turns); an instruction and its response, with an
    # optional system text.
    messages_column: str = "messages"
    prompt_column: str = "prompt"
    completion_column: str = "completion"
    instruction_column: str = "instruction"
    response_column: str = "response"
    system_column: str | None = None


class NormaliseConfig(StageConfig):
    unicode_nfkc: bool = True
    fix_mojibake: bool = True
    strip_html: bool = True
    whitespace: bool = True
    strip_invisible: bool = True  # every Unicode default-ignorable character; right-to-left overrides resolved
    fold_digits: bool = True  # digits of every script (Arabic-Indic, Devanagari…) as 0-9
    repair_lookalikes: bool = True  # Cyrillic/Greek look-alikes inside Latin words as Latin (UTS #39 skeletons)
    lowercase: bool = False


class QualityConfig(StageConfig):
    min_chars: int = Field(3, ge=0)
    max_chars: int = Field(5000, ge=1)
    min_alpha_ratio: float = Field(0.5, ge=0.0, le=1.0)
    languages: list[str] | None = None  # ISO 639-1 codes to keep, e.g. ["en"]; None disables the check
    language_min_confidence: float = Field(0.5, ge=0.0, le=1.0)
    language_min_words: int = Field(4, ge=1)  # shorter texts are too short to judge reliably

    @model_validator(mode="after")
    def _bounds(self) -> QualityConfig:
        if self.min_chars > self.max_chars:
            raise ValueError(
                f"min_chars ({self.min_chars}) must not exceed max_chars ({self.max_chars}); lower min_chars"
            )
        return self


class DedupConfig(StageConfig):
    exact: bool = True
    near: bool = True
    threshold: float = Field(0.8, gt=0.0, le=1.0)  # Jaccard similarity of shingle sets
    num_perm: int = Field(128, ge=16, le=1024)
    shingle: Literal["word", "char"] = "word"
    ngram: int = Field(3, ge=1, le=10)
    seed: int = 1


class PIIConfig(StageConfig):
    enabled: bool = True
    ner: bool = True  # person names via NER; False = fast regex-only mode
    ner_backend: Literal["spacy", "presidio"] = "spacy"  # presidio: its AnalyzerEngine's NER recogniser
    # builtin: Steward's names model (spaCy's small English NER fine-tuned on generated PII text, built once into
    # $STEWARD_CACHE); or any installed spaCy model name or model folder.
    ner_model: str = "builtin"
    entities: list[PIIEntity] = Field(default_factory=lambda: list(PII_ENTITIES))
    default_action: PIIAction = "redact"
    actions: dict[PIIEntity, PIIAction] = Field(default_factory=dict)
    min_score: float = Field(0.5, ge=0.0, le=1.0)
    key_env: str = "STEWARD_PII_KEY"  # env var holding the HMAC key for pseudonymise
    mask_char: str = Field("*", min_length=1, max_length=1)
    mask_keep_last: int = Field(4, ge=0)

    # Token-classification (NER) data only. Tokens a label covers follow ``tagged`` by entity tag, whatever
    # the detectors say: a tagged person gets a consistent surrogate name and keeps its tag; a tag not listed
    # is kept as written (rewriting a labelled span would teach the placeholder). Untagged tokens are
    # rewritten only for ``untagged_entities``.
    tagged: dict[str, TaggedAction] = Field(default_factory=lambda: {"PER": "pseudonymise", "PERSON": "pseudonymise"})
    untagged_entities: list[PIIEntity] = Field(default_factory=lambda: list(NER_UNTAGGED_DEFAULT))

    def action_for(self, entity: str) -> str:
        return self.actions.get(entity, self.default_action)  # type: ignore[arg-type]


class ScreenConfig(StageConfig):
    enabled: bool = True
    threshold: float = Field(0.9, ge=0.0, le=1.0)
    action: Literal["flag", "quarantine"] = "flag"
    # Chat data: the answers a model is trained to give are screened on their own, stricter by default — a
    # model learns to say what its training answers say. The threshold and action above apply to the other turns.
    assistant_threshold: float = Field(0.5, ge=0.0, le=1.0)
    assistant_action: Literal["flag", "quarantine"] = "quarantine"


class BalanceConfig(StageConfig):
    weighting: Literal["none", "label", "label_group"] = "label_group"
    max_weight: float = Field(10.0, gt=0.0)
    resample: Literal["none", "oversample", "undersample"] = "none"
    identity_terms: dict[str, list[str]] | None = None  # None: the built-in lexicon
    association_p: float = Field(0.01, gt=0.0, lt=1.0)
    association_min_count: int = Field(5, ge=1)
    min_group_size: int = Field(30, ge=1)


class SplitConfig(StageConfig):
    validation: float = Field(0.1, ge=0.0, lt=1.0)
    test: float = Field(0.1, ge=0.0, lt=1.0)
    seed: int = 13
    stratify: bool = True
    column: str | None = None  # use the user's own split column (values train/validation/test)
    leakage: Literal["quarantine", "report"] = "quarantine"

    @model_validator(mode="after")
    def _fractions(self) -> SplitConfig:
        if self.validation + self.test >= 1.0:
            raise ValueError(
                f"validation + test must be < 1 (got {self.validation} + {self.test}); lower one of them"
            )
        return self


class CanaryConfig(StageConfig):
    """Secrets planted in the training split so the evaluate stage can measure memorisation (exposure,
    Carlini et al. 2019). Off by default: canaries are extra, synthetic training rows."""

    count: int = Field(0, ge=0, le=1000)  # distinct canaries; 0 = none
    repeats: int = Field(1, ge=1, le=100)  # copies of each in the training split
    template: str = "my account number is {secret}"
    # Chat data: each canary is a conversation — this question (with " (reference k)" when several), answered
    # with the template.
    chat_prompt: str = "What is my account number?"
    digits: int = Field(9, ge=4, le=30)  # the secret is this many random digits
    seed: int = 0

    @model_validator(mode="after")
    def _template(self) -> CanaryConfig:
        if self.template.count("{secret}") != 1 or "{" in self.template.replace("{secret}", ""):
            raise ValueError(f"template must contain {{secret}} exactly once and no other braces "
                             f"(got {self.template!r}); e.g. 'my account number is {{secret}}'")
        return self


class LossGuardConfig(StageConfig):
    """Stop the data stage when it would lose data silently: one reason quarantining more than
    ``max_share`` of the rows read, or a label of the input with no row left."""

    max_share: float = Field(0.05, gt=0.0, le=1.0)
    # Exact copies (identical after normalisation) are removed by design and never a misread setting; news
    # and support data repeat headlines and greetings, so they get a looser limit of their own.
    max_share_by_reason: dict[str, float] = Field(default_factory=lambda: {"duplicate_exact": 0.25})
    min_rows: int = Field(10, ge=1)  # fewer rows than this never trip it (one bad row in a tiny file)
    allow: bool = False  # True: warn loudly (console, summary, data card) instead of failing


class EncryptionConfig(StageConfig):
    """The run's data files (splits and quarantine) encrypted at rest: Parquet Modular Encryption under a key
    outside the run folder, ``$STEWARD_DATA_KEY`` (base64 text or a key file), else
    ``$STEWARD_HOME/data-at-rest.key`` (made on first use, 0600). Every stage reads them transparently."""

    enabled: bool = False  # opt-in: every machine that trains, evaluates or serves the run needs the key


class DataConfig(StageConfig):
    input: InputConfig = Field(default_factory=InputConfig)
    normalise: NormaliseConfig = Field(default_factory=NormaliseConfig)
    quality: QualityConfig = Field(default_factory=QualityConfig)
    dedup: DedupConfig = Field(default_factory=DedupConfig)
    pii: PIIConfig = Field(default_factory=PIIConfig)
    screen: ScreenConfig = Field(default_factory=ScreenConfig)
    balance: BalanceConfig = Field(default_factory=BalanceConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    canaries: CanaryConfig = Field(default_factory=CanaryConfig)
    loss: LossGuardConfig = Field(default_factory=LossGuardConfig)
    encryption: EncryptionConfig = Field(default_factory=EncryptionConfig)
    # Names for the classes as the file writes them, e.g. {0: negative, 1: positive}: the splits, the model,
    # the scorecard and the service use the names. Classification only.
    label_names: dict[str, str] = Field(default_factory=dict)

    @field_validator("label_names", mode="before")
    @classmethod
    def _label_keys_as_written(cls, value: Any) -> Any:
        # YAML reads {0: negative} with an int key; the file's labels are read as text, so compare as text.
        return {str(k): v for k, v in value.items()} if isinstance(value, dict) else value

    @model_validator(mode="after")
    def _label_names_need_classification(self) -> DataConfig:
        if self.label_names and self.input.task != "classification":
            raise ValueError(f"label_names: got {self.label_names}, but input.task is {self.input.task!r}, whose "
                             "rows have no class labels. Fix: remove label_names")
        return self

    @model_validator(mode="after")
    def _canaries_need_classification(self) -> DataConfig:
        if self.canaries.count and self.input.task == "ner":
            raise ValueError(f"canaries.count: got {self.canaries.count}, but canaries are planted for text "
                             "classification and conversations, and input.task is 'ner'. Fix: set canaries.count "
                             "to 0")
        return self


class DataRun(Protocol):
    """What the data stage reads of a run's config: its run folder and ``data`` (``RunConfig`` has them; a stage never imports
    the config that composes every stage)."""

    @property
    def run_dir(self) -> Path: ...

    @property
    def data(self) -> DataConfig: ...
