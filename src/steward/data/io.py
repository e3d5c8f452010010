"""Load raw data (CSV, TSV, JSONL, Parquet, CoNLL) into one frame, quarantining rows that cannot be read.

Nothing is dropped silently: a malformed line, a row with undecodable bytes, an empty text or a label
outside the declared set becomes a quarantine record with its line number; a file whose *shape* is wrong
(missing columns, unknown format) raises :class:`InputDataError` before any work is done.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from steward.data import conversations
from steward.data.config import InputConfig
from steward.data.pii.operators import bio_spans
from steward.data.quarantine import Quarantine
from steward.errors import InputDataError
from steward.hashing import sha256_text

STAGE = "load"
_EXT_FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
                ".parquet": "parquet", ".pq": "parquet", ".conll": "conll", ".txt": "conll"}
_SURROGATE = re.compile("[\udc80-\udcff]")
_BIO = re.compile(r"^(O|[BIES]-\S+)$")
_INTEGRAL = re.compile(r"^([+-]?\d+)\.0+$")
MISSING_GROUP = "(missing)"


@dataclass(frozen=True)
class Loaded:
    """What ``load`` read: the rows, how many records the file held, and what it decided about the file."""

    frame: pd.DataFrame
    rows_in: int
    format: str
    encoding: str | None  # None for Parquet (binary)
    encoding_detected: bool  # True when input.encoding is "auto" and the file was not UTF-8
    labels_found: dict[str, int] = field(default_factory=dict)  # every label seen, declared or not
    label_spellings: dict[str, str] = field(default_factory=dict)  # e.g. {"2.0": "2"}


def canonical_label(value: object) -> str:
    """One spelling per label: trimmed, and an integral float written as an integer ("2.0", 2.0 -> "2").

    Files exported from spreadsheets and pandas often write an integer class as a float; without this a
    label written ``2.0`` becomes a class of its own beside ``2``.
    """
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    if isinstance(value, float) and value.is_integer():  # numpy floats are floats too
        return str(int(value))
    text = str(value).strip()  # booleans stay True/False, as a CSV writes them
    m = _INTEGRAL.match(text)
    return m.group(1) if m else text  # only the ".0" goes: "007" and "+2" are spellings of their own


def detect_format(path: Path, declared: str, task: str) -> str:
    if declared != "auto":
        return declared
    fmt = _EXT_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputDataError(
            f"input.format: cannot tell the format of {path.name!r} from its extension {path.suffix!r}; "
            f"set input.format to one of csv, tsv, jsonl, parquet, conll"
        )
    if fmt == "conll" and task != "ner":
        raise InputDataError(
            f"input.format: {path.name!r} looks like CoNLL (token-per-line), which is for input.task: ner; "
            f"set input.task: ner, or input.format: csv/tsv if it is a table"
        )
    return fmt


def _decode(raw: bytes, encoding: str, path: Path) -> tuple[str, str, bool]:
    """The file's text, the encoding used, and whether it was detected (``encoding: auto``).

    ``auto`` takes UTF-8 when every byte decodes as UTF-8, else asks charset-normalizer; an explicit
    encoding is used as given, and rows with bytes it cannot decode are quarantined one by one.
    """
    if encoding == "auto":
        try:
            return raw.decode("utf-8-sig"), "utf-8", False
        except UnicodeDecodeError:
            pass
        text = raw.decode("utf-8-sig", errors="surrogateescape")
        lines = text.splitlines() or [""]
        bad = sum(1 for ln in lines if _SURROGATE.search(ln))
        if bad <= max(1, len(lines) // 100):
            # A UTF-8 file with a stray bad byte or two: guessing another code page for the whole file would
            # garble every row, so keep UTF-8 and let those rows be quarantined as bad_encoding.
            return text, "utf-8", False
        from charset_normalizer import from_bytes

        # Fewest decoding oddities first, then the most coherent language: on short Western European files
        # several code pages decode without oddities, and best() alone may pick cp1250 for latin-1 text.
        matches = list(from_bytes(raw))
        best = min(matches, key=lambda m: (m.chaos, -m.coherence)) if matches else None
        if best is None:
            raise InputDataError(f"input.encoding: {path.name} is not UTF-8 and its encoding cannot be detected; "
                                 f"set it, e.g. --encoding latin-1 or --encoding cp1252")
        return str(best), best.encoding, True
    try:
        # surrogateescape keeps undecodable bytes as lone surrogates so the rows holding them can be
        # quarantined individually instead of failing the whole file.
        return raw.decode(encoding, errors="surrogateescape"), encoding, False
    except LookupError as exc:
        raise InputDataError(f"input.encoding: unknown encoding {encoding!r} for {path}; use auto (detect it), "
                             f"utf-8, latin-1 or cp1252") from exc


def load(cfg: InputConfig, quarantine: Quarantine, extra_columns: Sequence[tuple[str, str]] = (),
         label_names: Mapping[str, str] | None = None) -> Loaded:
    """Read ``cfg.path`` into a frame with ``row_id, text, label, raw_sha256`` (+ groups, tokens/tags for NER).

    ``extra_columns`` are (config field, column) pairs carried through as strings (e.g. a split column).
    ``rows_in`` counts every record seen, including those quarantined while loading. ``label_names`` maps
    a label as the file writes it to the name used from here on (``input.labels`` may use either).
    """
    if cfg.path is None:
        raise InputDataError("data.input.path is not set; pass the input file (steward data INPUT) "
                             "or set data.input.path in steward.yaml")
    path = Path(cfg.path)
    if not path.is_file():
        raise InputDataError(f"data.input.path: {path} does not exist or is not a file; check the path")
    fmt = detect_format(path, cfg.format, cfg.task)
    encoding: str | None = None
    detected = False
    if fmt == "parquet":
        try:
            records = pd.read_parquet(path).to_dict("records")
        except Exception as exc:  # pyarrow raises several unrelated types for a bad file
            raise InputDataError(f"data.input.path: {path} is not a readable Parquet file ({exc})") from exc
        records = [(i, i + 1, r) for i, r in enumerate(records)]
        columns = set(records[0][2]) if records else set()
    else:
        text, encoding, detected = _decode(path.read_bytes(), cfg.encoding, path)
        if fmt in ("csv", "tsv"):
            records, columns = _read_delimited(text, "," if fmt == "csv" else "\t", quarantine)
        elif fmt == "jsonl":
            records, columns = _read_json(text, quarantine)
        else:
            records, columns = _read_conll(text, quarantine, cfg)
    rows_in = len(records) + len(quarantine.records)
    if rows_in == 0:
        header = f" (columns: {', '.join(sorted(columns))})" if columns else ""
        raise InputDataError(f"data.input.path: {path.name} has no data rows{header}; it holds "
                             f"{'only a header' if columns else 'nothing Steward can read as ' + fmt}. "
                             f"Fix: point data.input.path at the file with the rows")
    _check_columns(cfg, columns, path, extra_columns)
    labels_found: Counter[str] = Counter()
    spellings: dict[str, str] = {}
    names = {canonical_label(k): v for k, v in (label_names or {}).items()}
    frame = _to_frame(records, cfg, quarantine, [c for _, c in extra_columns], labels_found, spellings, names)
    return Loaded(frame, rows_in, fmt, encoding, detected, dict(labels_found.most_common()), spellings)


def expected_shape(cfg: InputConfig, fmt: str) -> str:
    """What Steward expected of the file, in words (for an error when every row failed one way)."""
    if cfg.task == "ner":
        return ("CoNLL: 'token ... TAG' per line, a blank line between sentences" if fmt == "conll" else
                f"one object per record with a {cfg.tokens_column!r} list and a {cfg.tags_column!r} list")
    if cfg.task == "chat":
        return (f"a {cfg.messages_column!r} list of {{role, content}} turns, or {cfg.prompt_column!r} and "
                f"{cfg.completion_column!r}, or {cfg.instruction_column!r} and {cfg.response_column!r}, per record")
    cols = f"a {cfg.text_column!r} column and a {cfg.label_column!r} column"
    return {"csv": f"a header row, then comma-separated rows with {cols}",
            "tsv": f"a header row, then tab-separated rows with {cols}",
            "jsonl": f"one JSON object per line (or one JSON array of objects) with {cols}",
            "parquet": f"a table with {cols}"}.get(fmt, cols)


def describe_file(path: Path, limit: int = 60) -> str:
    """How the file begins (its shape, and the first characters of its first line, for the console only)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return ""
    first = head.split(b"\n", 1)[0].decode("utf-8", errors="replace")
    lines = head.count(b"\n")
    kind = ("a JSON array" if first.lstrip().startswith("[") else "a JSON object" if first.lstrip().startswith("{")
            else f"{first.count(',')} commas and {first.count(chr(9))} tabs in its first line")
    return (f"The file begins like {kind} ({len(first)} characters in the first line, {lines} line breaks in the "
            f"first {len(head)} bytes); first characters: {first[:limit]!r}.")


def _read_delimited(text: str, delimiter: str, q: Quarantine) -> tuple[list[tuple[int, int, dict[str, Any]]], set[str]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise InputDataError("data.input.path: the file is empty (no header row)") from None
    except csv.Error as exc:
        raise InputDataError(f"data.input.path: the header row is malformed ({exc})") from exc
    header = [h.strip().lstrip("\ufeff") for h in header]
    records: list[tuple[int, int, dict[str, Any]]] = []
    row_id = 0
    while True:
        line_no = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            q.drop_raw(row_id, "malformed_line", STAGE, sha256_text(str(line_no)), f"line {line_no}: {exc}", line=line_no)
            row_id += 1
            continue
        if not fields:  # blank line
            continue
        if len(fields) != len(header):
            q.drop_raw(row_id, "malformed_line", STAGE, sha256_text(delimiter.join(fields)),
                       f"line {line_no}: {len(fields)} fields, header has {len(header)}", line=line_no)
        else:
            records.append((row_id, line_no, dict(zip(header, fields, strict=True))))
        row_id += 1
    return records, set(header)


def _read_json(text: str, q: Quarantine) -> tuple[list[tuple[int, int, dict[str, Any]]], set[str]]:
    """JSON Lines, or one JSON array of objects (as ``datasets.load_dataset("json")`` reads both)."""
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            if exc.msg != "Extra data":  # "Extra data": one JSON value per line, i.e. JSON Lines
                raise InputDataError(f"data.input.path: the file starts with '[' (a JSON array) but is not valid "
                                     f"JSON (line {exc.lineno}: {exc.msg}); fix it or write it as JSON Lines") from exc
        else:
            return _read_json_array(items, q)
    records: list[tuple[int, int, dict[str, Any]]] = []
    columns: set[str] = set()
    row_id = 0
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            q.drop_raw(row_id, "malformed_line", STAGE, sha256_text(line), f"line {line_no}: invalid JSON ({exc.msg})", line=line_no)
        else:
            if isinstance(obj, dict):
                records.append((row_id, line_no, obj))
                columns.update(obj)
            else:
                q.drop_raw(row_id, "malformed_line", STAGE, sha256_text(line),
                           f"line {line_no}: expected a JSON object, got {type(obj).__name__}", line=line_no)
        row_id += 1
    return records, columns


def _read_json_array(items: list[Any], q: Quarantine) -> tuple[list[tuple[int, int, dict[str, Any]]], set[str]]:
    records: list[tuple[int, int, dict[str, Any]]] = []
    columns: set[str] = set()
    for i, obj in enumerate(items):
        if isinstance(obj, dict):
            records.append((i, i + 1, obj))  # "line" is the item's position in the array, from 1
            columns.update(obj)
        else:
            q.drop_raw(i, "malformed_line", STAGE, sha256_text(json.dumps(obj, default=str)),
                       f"item {i + 1}: expected a JSON object, got {type(obj).__name__}", line=i + 1)
    return records, columns


def _read_conll(text: str, q: Quarantine, cfg: InputConfig) -> tuple[list[tuple[int, int, dict[str, Any]]], set[str]]:
    """CoNLL: ``token [pos chunk] TAG`` per line, blank line between sentences, -DOCSTART- ignored."""
    records: list[tuple[int, int, dict[str, Any]]] = []
    tokens: list[str] = []
    tags: list[str] = []
    bad: str | None = None
    start_line = 1
    row_id = 0

    def flush() -> None:
        nonlocal tokens, tags, bad, row_id
        if tokens or bad:
            if bad:
                q.drop_raw(row_id, "malformed_line", STAGE, sha256_text(" ".join(tokens)), bad, line=start_line)
            else:
                records.append((row_id, start_line, {cfg.tokens_column: tokens, cfg.tags_column: tags}))
            row_id += 1
        tokens, tags, bad = [], [], None

    for line_no, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped:
            flush()
            start_line = line_no + 1
            continue
        if stripped.startswith("-DOCSTART-"):
            continue
        parts = stripped.split()
        if len(parts) < 2:
            bad = bad or f"line {line_no}: expected 'token TAG', got {len(parts)} column"
            continue
        tokens.append(parts[0])
        tags.append(parts[-1])
    flush()
    return records, {cfg.tokens_column, cfg.tags_column}


def _check_columns(cfg: InputConfig, columns: set[str], path: Path, extra: Sequence[tuple[str, str]]) -> None:
    if not columns:
        return  # an empty file: every row (none) accounted for; the stage reports it
    if cfg.task == "ner":
        required = {"input.tokens_column": cfg.tokens_column, "input.tags_column": cfg.tags_column}
    elif cfg.task == "chat":
        required = {}
        if chat_shape(cfg, columns) is None:
            raise InputDataError(
                f"{path.name}: no conversation columns: expected {expected_shape(cfg, '')}. Available columns: "
                f"{', '.join(sorted(columns))}. Fix: set input.messages_column, input.prompt_column/"
                f"completion_column or input.instruction_column/response_column to the file's columns")
    else:
        required = {"input.text_column": cfg.text_column, "input.label_column": cfg.label_column}
    for i, g in enumerate(cfg.group_columns):
        required[f"input.group_columns[{i}]"] = g
    if cfg.id_column:
        required["input.id_column"] = cfg.id_column
    required.update(dict(extra))
    missing = {field: col for field, col in required.items() if col not in columns}
    if missing:
        available = ", ".join(sorted(columns))
        parts = [f"{field} = {col!r}" for field, col in missing.items()]
        raise InputDataError(
            f"{path.name}: column(s) not found: {'; '.join(parts)}. Available columns: {available}. "
            f"Fix: set the field(s) to one of the available columns (e.g. --text-column / --label-column)"
        )


def chat_shape(cfg: InputConfig, columns: set[str]) -> str | None:
    return conversations.shape_of(columns, cfg.messages_column, (cfg.prompt_column, cfg.completion_column),
                                  (cfg.instruction_column, cfg.response_column))


@dataclass
class _Rows:
    """Turns parsed records into rows, quarantining each bad one with its reason; counts labels found."""

    cfg: InputConfig
    q: Quarantine
    labels_found: Counter[str]
    spellings: dict[str, str]
    names: Mapping[str, str]
    declared: set[str] | None = None
    shape: str | None = None  # chat: which of the three conversation shapes the file holds

    def ner(self, row_id: int, line_no: int, rec: dict[str, Any]) -> dict[str, Any] | None:
        cfg, q = self.cfg, self.q
        tokens, tags = rec.get(cfg.tokens_column), rec.get(cfg.tags_column)
        if not isinstance(tokens, list) or not isinstance(tags, list):
            q.drop_raw(row_id, "malformed_line", STAGE, sha256_text(json.dumps(rec, default=str)),
                       f"line {line_no}: {cfg.tokens_column}/{cfg.tags_column} must be lists", line=line_no)
            return None
        tokens, tags = [str(t) for t in tokens], [str(t) for t in tags]
        text = " ".join(tokens)
        h = sha256_text(text)
        if len(tokens) != len(tags):
            q.drop_raw(row_id, "tokens_tags_mismatch", STAGE, h,
                       f"line {line_no}: {len(tokens)} tokens but {len(tags)} tags", line=line_no)
            return None
        bad_tags = sorted({t for t in tags if not _BIO.match(t)})
        if bad_tags:
            q.drop_raw(row_id, "invalid_tag", STAGE, h, f"line {line_no}: tags not in BIO form: {bad_tags[:5]}", line=line_no)
            return None
        self.labels_found.update(ent for _, _, ent in bio_spans(tags))  # entities, not tokens
        if self.declared is not None:
            unknown = sorted({t.split("-", 1)[1] for t in tags if t != "O"} - self.declared)
            if unknown:
                q.drop_raw(row_id, "unknown_label", STAGE, h,
                           f"line {line_no}: entity types {unknown} not in input.labels", line=line_no)
                return None
        return {"row_id": row_id, "text": text, "label": "", "tokens": tokens, "tags": tags, "raw_sha256": h}

    def chat(self, row_id: int, line_no: int, rec: dict[str, Any]) -> dict[str, Any] | None:
        cfg = self.cfg
        names = {"messages": cfg.messages_column, "prompt": cfg.prompt_column, "completion": cfg.completion_column,
                 "instruction": cfg.instruction_column, "response": cfg.response_column, "system": cfg.system_column}
        conv = conversations.from_record(rec, self.shape or "messages", names)
        if isinstance(conv, conversations.Problem):
            raw = json.dumps({k: rec.get(v) for k, v in names.items() if v and v in rec}, default=str, sort_keys=True)
            self.q.drop_raw(row_id, conv.reason, STAGE, sha256_text(raw), f"line {line_no}: {conv.detail}", line=line_no)
            return None
        raw = json.dumps(conv.to_messages(), ensure_ascii=False)
        if _SURROGATE.search(raw):
            self.q.drop_raw(row_id, "bad_encoding", STAGE, sha256_text(raw), f"line {line_no}: bytes not valid "
                            f"{cfg.encoding}; set input.encoding if the file uses another", line=line_no)
            return None
        return {"row_id": row_id, "text": conversations.transcript(conv.turns), "label": "",
                "messages": conv.to_messages(), "prompt": conversations.transcript(conv.prompt),
                "raw_sha256": sha256_text(raw)}

    def labelled(self, row_id: int, line_no: int, rec: dict[str, Any]) -> dict[str, Any] | None:
        cfg, q = self.cfg, self.q
        raw_text = rec.get(cfg.text_column)
        text = "" if raw_text is None or (isinstance(raw_text, float) and pd.isna(raw_text)) else str(raw_text)
        h = sha256_text(text)
        raw_label = rec.get(cfg.label_column)
        canon = canonical_label(raw_label)
        label = self.names.get(canon, canon)
        if label:
            self.labels_found[label] += 1
            if str(raw_label).strip() != canon and not isinstance(raw_label, int | float):
                self.spellings.setdefault(str(raw_label).strip(), canon)
        problem = self._label_problem(text, label, line_no)
        if problem is not None:
            q.drop_raw(row_id, problem[0], STAGE, h, problem[1], line=line_no)
            return None
        return {"row_id": row_id, "text": text, "label": label, "raw_sha256": h}

    def _label_problem(self, text: str, label: str, line_no: int) -> tuple[str, str] | None:
        cfg = self.cfg
        if _SURROGATE.search(text) or _SURROGATE.search(label):
            return "bad_encoding", f"line {line_no}: bytes not valid {cfg.encoding}; set input.encoding if the file uses another"
        if not text.strip():
            return "empty_text", f"line {line_no}: {cfg.text_column} is empty"
        if not label:
            return "missing_label", f"line {line_no}: {cfg.label_column} is empty"
        if self.declared is not None and label not in self.declared:
            return "unknown_label", f"line {line_no}: label {label!r} not in input.labels {sorted(self.declared)}"
        return None

    def extras(self, row: dict[str, Any], rec: dict[str, Any], extra: list[str], line_no: int) -> dict[str, Any]:
        """The source id, group attributes and extra columns; the hash and line go last."""
        cfg, h = self.cfg, row.pop("raw_sha256")
        if cfg.id_column:
            row["source_id"] = str(rec.get(cfg.id_column))
        for g in cfg.group_columns:
            v = rec.get(g)
            row[g] = MISSING_GROUP if v is None or str(v).strip() == "" or (isinstance(v, float) and pd.isna(v)) \
                else str(v).strip()
        for col in extra:
            row[col] = "" if rec.get(col) is None else str(rec.get(col))
        row["raw_sha256"] = h
        row["line"] = line_no
        return row


def _to_frame(records: list[tuple[int, int, dict[str, Any]]], cfg: InputConfig, q: Quarantine,
              extra: list[str], labels_found: Counter[str], spellings: dict[str, str],
              names: Mapping[str, str]) -> pd.DataFrame:
    canonical = cfg.task != "ner"
    declared = ({names.get(canonical_label(x), canonical_label(x)) for x in cfg.labels} if canonical
                else set(cfg.labels)) if cfg.labels is not None else None
    reader = _Rows(cfg, q, labels_found, spellings, names, declared,
                   chat_shape(cfg, set().union(*(r.keys() for _, _, r in records))) if cfg.task == "chat" else None)
    read_row = {"ner": reader.ner, "chat": reader.chat}.get(cfg.task, reader.labelled)
    rows: list[dict[str, Any]] = []
    for row_id, line_no, rec in records:
        row = read_row(row_id, line_no, rec)
        if row is not None:
            rows.append(reader.extras(row, rec, extra, line_no))
    base_cols = ["row_id", "text", "label", "raw_sha256", "line"]
    frame = pd.DataFrame(rows, columns=base_cols + [c for c in (rows[0] if rows else {}) if c not in base_cols])
    return frame.astype({"row_id": "int64", "line": "int64"}) if not frame.empty else frame
