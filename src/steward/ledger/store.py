"""Append-only JSONL ledger with a sha256 hash chain over events and the artifacts they name."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from steward.atomic import write_text
from steward.errors import LedgerError, LedgerIntegrityError, StewardError
from steward.hashing import digest, sha256_tree
from steward.ledger import signed
from steward.ledger.checkpoint import Signer, default_signer, key_id
from steward.ledger.rotation import LEDGER_ROTATION, in_force, ledger_rotations, rotation_statement
from steward.provenance import stamp
from steward.types import ArtifactRef

LEDGER_NAME = "ledger.jsonl"
GENESIS = "0" * 64


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def artifact(path: str | os.PathLike[str], run_dir: str | os.PathLike[str], role: str = "", *,
             sha256: str | None = None, name: str | None = None) -> ArtifactRef:
    """The one way to name a file for the ledger: relative to ``run_dir`` when inside it, else absolute.

    ``path`` may be relative to the working directory (as a user types ``--run-dir runs/demo``) or absolute;
    either way the record resolves from the run folder alone, whatever directory verifies it later.
    ``sha256`` skips re-hashing a file the caller has just hashed. ``name`` records a file written into a
    generation folder (see ``atomic_dir``) under the run-relative path it will have once swapped in.
    """
    # abspath, not resolve: stage folders are symlinks to generations (see atomic_dir) and the ledger must
    # name the stable path (data/train.parquet), not a generation that the next run deletes.
    p = Path(os.path.abspath(path))
    digest = sha256 if sha256 is not None else sha256_tree(p)
    if name is not None:
        return ArtifactRef(path=_relative_name(name), sha256=digest, role=role)
    root = Path(os.path.abspath(run_dir))
    rel = p.relative_to(root).as_posix() if p.is_relative_to(root) else str(p)
    return ArtifactRef(path=rel, sha256=digest, role=role)


def _relative_name(name: str) -> str:
    parts = Path(name).parts
    if Path(name).is_absolute() or ".." in parts or not parts:
        raise LedgerError(f"artifact name {name!r} must be a path inside the run folder (no '..', not absolute)")
    return Path(name).as_posix()


def check_ref(ref: ArtifactRef, run_dir: str | os.PathLike[str]) -> None:
    """Refuse a record that would not resolve from the run folder when the ledger is verified.

    A relative path must name an existing file under ``run_dir`` (never climb out of it with '..'); an
    absolute path must exist and lie outside ``run_dir`` (inside, it must be recorded relative, or moving
    the run folder would break the ledger).
    """
    root = Path(os.path.abspath(run_dir))
    p = Path(ref.path)
    fix = "build artifact records with steward.ledger.artifact(path, run_dir)"
    if p.is_absolute():
        if p.is_relative_to(root):
            raise LedgerError(f"artifact {ref.path} ({ref.role or 'no role'}) lies inside the run folder {run_dir} "
                              f"but is recorded by an absolute path; {fix}")
        if not p.exists():
            raise LedgerError(f"artifact {ref.path} ({ref.role or 'no role'}) does not exist; {fix}")
        return
    if ".." in p.parts or not (root / p).exists():
        raise LedgerError(f"artifact {ref.path} ({ref.role or 'no role'}) does not resolve from the run folder "
                          f"{run_dir} (looked for {root / p}); {fix}")


@dataclass(frozen=True)
class LedgerEvent:
    index: int
    stage: str
    started_at: str
    finished_at: str
    config_digest: str
    inputs: tuple[ArtifactRef, ...]
    outputs: tuple[ArtifactRef, ...]
    prev_hash: str
    provenance: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    hash: str = ""

    def body(self) -> dict[str, Any]:
        """Everything the hash covers (all fields but the hash itself)."""
        return {
            "index": self.index,
            "stage": self.stage,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "config_digest": self.config_digest,
            "inputs": [a.to_dict() for a in self.inputs],
            "outputs": [a.to_dict() for a in self.outputs],
            "prev_hash": self.prev_hash,
            "provenance": self.provenance,
            "summary": self.summary,
        }

    def compute_hash(self) -> str:
        return digest(self.body())

    def to_json(self) -> str:
        return json.dumps({**self.body(), "hash": self.hash}, sort_keys=True, ensure_ascii=False, default=str)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LedgerEvent:
        return cls(
            index=d["index"],
            stage=d["stage"],
            started_at=d["started_at"],
            finished_at=d["finished_at"],
            config_digest=d["config_digest"],
            inputs=tuple(ArtifactRef(**a) for a in d["inputs"]),
            outputs=tuple(ArtifactRef(**a) for a in d["outputs"]),
            prev_hash=d["prev_hash"],
            provenance=d.get("provenance", {}),
            summary=d.get("summary", {}),
            hash=d["hash"],
        )


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    events: int
    artifacts_checked: int
    superseded: int
    error: str | None = None
    broken_index: int | None = None
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


class Ledger:
    """The ledger of one run folder."""

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LEDGER_NAME

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        # Two stages may finish at once (e.g. a user running two commands); serialise appends.
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.run_dir / ".ledger.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _raw_lines(self) -> list[str]:
        if not self.path.exists():
            return []
        return [ln for ln in self.path.read_text(encoding="utf-8").splitlines() if ln.strip()]

    def events(self) -> list[LedgerEvent]:
        out = []
        for i, line in enumerate(self._raw_lines()):
            try:
                out.append(LedgerEvent.from_dict(json.loads(line)))
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise LedgerIntegrityError(f"event {i}: unreadable ledger line ({exc})", event_index=i) from exc
        return out

    def append(
        self,
        *,
        stage: str,
        started_at: str,
        config_digest: str,
        inputs: Sequence[ArtifactRef],
        outputs: Sequence[ArtifactRef],
        summary: dict[str, Any] | None = None,
        signer: Signer | None = None,
    ) -> LedgerEvent:
        """Append one event chained to the last one and sign the new head (with ``signer``, default this
        machine's key). The file is rewritten atomically (never half a line).

        Raises ``LedgerError`` (and writes nothing) when an artifact does not resolve from the run folder, and
        ``LedgerIntegrityError`` (writing nothing) when the ledger was handed over to another key than the
        signer's (``steward ledger rotate-key``).
        """
        for ref in (*inputs, *outputs):
            check_ref(ref, self.run_dir)
        try:
            signer = signer or default_signer(self.run_dir)
        except (StewardError, OSError, ValueError) as exc:  # the event is still kept; verify names it unsigned
            logging.getLogger("steward.ledger").error("no key to sign the ledger with (%s): %s", type(exc).__name__,
                                                      exc)
            signer = None
        with self._locked():
            lines = self._raw_lines()
            if signer is not None:
                in_force(ledger_rotations(_readable(lines)), signer.public_key)
            if lines:
                try:
                    last = json.loads(lines[-1])
                    prev_hash, index = last["hash"], last["index"] + 1
                except (json.JSONDecodeError, KeyError) as exc:
                    raise LedgerError(f"cannot append: last ledger line is unreadable ({exc}); run verify") from exc
            else:
                prev_hash, index = GENESIS, 0
            event = LedgerEvent(
                index=index,
                stage=stage,
                started_at=started_at,
                finished_at=now_iso(),
                config_digest=config_digest,
                inputs=tuple(inputs),
                outputs=tuple(outputs),
                prev_hash=prev_hash,
                provenance=stamp(),
                summary=summary or {},
            )
            event = LedgerEvent(**{**event.__dict__, "hash": event.compute_hash()})
            write_text(self.path, "".join(ln + "\n" for ln in lines) + event.to_json() + "\n")
            hashes = [json.loads(ln)["hash"] for ln in lines] + [event.hash]
            try:
                if signer is not None:
                    signed.sign(self.run_dir, hashes, event.finished_at, signer=signer)  # signed and witnessed
            except (StewardError, OSError, ValueError) as exc:
                # The event is written; the next append signs a head covering it. `ledger verify` names every
                # event no checkpoint covers, so this is evident, not silent.
                logging.getLogger("steward.ledger").error("the ledger head after event %d could not be signed "
                                                          "(%s): %s", index, type(exc).__name__, exc)
            return event

    def verify(self, public_key: bytes | None = None, witness_dir: Path | None = None) -> VerifyReport:
        """Check the chain, every event's own hash, the artifacts named by the newest event per path, and the
        signed checkpoints (beside the ledger and in ``witness_dir``) against ``public_key`` (default: this
        machine's signing key). Every event must be covered by a signed checkpoint.

        An artifact overwritten by a later run of a stage is *superseded*, not broken: only the newest
        event that names a path vouches for its current content.
        """
        report = self._verify_chain()
        if not report.ok:
            return report
        from dataclasses import replace

        from steward.ledger.checkpoint import existing_signer

        fail = lambda msg, idx=None: VerifyReport(False, report.events, report.artifacts_checked,  # noqa: E731
                                                  report.superseded, msg, idx)
        if not signed.stored(self.run_dir) and witness_dir is None:
            # a ledger written before Steward signed its ledgers: the chain holds, nothing more can be said
            return replace(report, warnings=(*report.warnings, f"the ledger is not signed (no {signed.CHECKPOINTS_NAME}): "
                                             "written before Steward signed ledgers, or its checkpoints were "
                                             "deleted — verify with --witness to tell which"))
        signer = existing_signer(self.run_dir) if public_key is None else None
        if public_key is None and signer is None:
            return fail("no public key to check the ledger's signatures with: pass --public-key (the signer's, "
                        "from `steward audit public-key` on the machine that ran the stages)")
        key = public_key if public_key is not None else signer.public_key  # type: ignore[union-attr]
        try:
            events = self.events()
            facts = signed.check(self.run_dir, [e.hash for e in events], key, witness_dir, ledger_rotations(events))
        except LedgerIntegrityError as exc:
            return fail(str(exc))
        if witness_dir is not None and facts["witness_checkpoints"] == 0:
            return fail(f"the witness {witness_dir} holds no checkpoint of this ledger: it cannot vouch for it "
                        "(wrong folder, or the ledger was never shown to it)")
        if facts["signed_events"] < report.events:
            return VerifyReport(False, report.events, report.artifacts_checked, report.superseded,
                                f"event {facts['signed_events']} and later are covered by no signed checkpoint "
                                f"(appended without the signing key, or its checkpoints removed)",
                                facts["signed_events"])
        return report

    def sign_head(self) -> Any:
        """Sign the current head with this machine's key (``steward ledger sign``): for a ledger written
        before Steward signed ledgers. Refused when the chain or an artifact is broken; the witness refuses
        a head that contradicts what it holds, so a rewritten ledger cannot be signed over its history.
        Returns the ``Checkpoint``."""
        report = self._verify_chain()
        if not report.ok:
            raise LedgerIntegrityError(f"not signed: {report.error}", event_index=report.broken_index)
        events = self.events()
        signer = default_signer(self.run_dir)
        in_force(ledger_rotations(events), signer.public_key)
        with self._locked():
            return signed.sign(self.run_dir, [e.hash for e in events], now_iso(), signer=signer)

    def rotate_key(self, old: Signer, new: Signer) -> dict[str, Any]:
        """Hand the ledger from ``old`` to ``new`` (``steward ledger rotate-key``): a ``key_rotation`` event
        carrying the old key's signed statement, and a checkpoint covering it signed by the old key — its last
        word. Later heads must be the new key's (``append`` refuses the old one). Refused on a broken chain."""
        import base64

        report = self.check_chain()
        if not report.ok:
            raise LedgerIntegrityError(f"not rotated: {report.error}", event_index=report.broken_index)
        if old.public_key == new.public_key:
            raise LedgerIntegrityError("--new-key is the key that signs the ledger now: make a new one with "
                                       "`steward audit keygen --out PATH`")
        events = self.events()
        in_force(ledger_rotations(events), old.public_key)
        origin = signed.origin_for(self.run_dir, [e.hash for e in events])
        size = len(events) + 1
        statement = rotation_statement(origin, size, old.public_key, new.public_key)
        b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
        event = self.append(stage=LEDGER_ROTATION, started_at=now_iso(), config_digest="", inputs=[], outputs=[],
                            summary={"origin": origin, "old_public_key": b64(old.public_key),
                                     "new_public_key": b64(new.public_key), "endorsement": b64(old.sign(statement)),
                                     "old_key_id": key_id(old.public_key), "new_key_id": key_id(new.public_key)},
                            signer=old)
        return {"event": event.index, "old_key_id": key_id(old.public_key), "new_key_id": key_id(new.public_key),
                "signed": signed.stored(self.run_dir)[-1].size == size}

    def check_chain(self) -> VerifyReport:
        """The hash chain and every event's own hash, not the artifacts (``steward.ledger.trust`` checks only
        the artifacts it is asked about)."""
        try:
            events = self.events()
        except LedgerIntegrityError as exc:
            return VerifyReport(False, 0, 0, 0, str(exc), exc.event_index)
        if not events:
            return VerifyReport(False, 0, 0, 0, f"no ledger events in {self.path}", None)
        prev = GENESIS
        for pos, ev in enumerate(events):
            if ev.index != pos:
                return VerifyReport(False, len(events), 0, 0,
                                    f"event {pos}: index is {ev.index}, expected {pos} (deleted or reordered)", pos)
            if ev.prev_hash != prev:
                return VerifyReport(False, len(events), 0, 0,
                                    f"event {pos} ({ev.stage}): prev_hash does not match event {pos - 1}'s hash "
                                    "(an event was deleted, reordered or appended out of chain)", pos)
            if ev.compute_hash() != ev.hash:
                return VerifyReport(False, len(events), 0, 0,
                                    f"event {pos} ({ev.stage}): content does not match its hash (event edited)", pos)
            prev = ev.hash
        return VerifyReport(True, len(events), 0, 0)

    def _verify_chain(self) -> VerifyReport:
        """The hash chain and the artifacts (what the signatures then pin)."""
        report = self.check_chain()
        if not report.ok:
            return report
        events = self.events()
        newest: dict[str, tuple[int, ArtifactRef]] = {}
        total_refs = 0
        for ev in events:
            for ref in (*ev.inputs, *ev.outputs):
                total_refs += 1
                newest[ref.path] = (ev.index, ref)
        warnings: list[str] = []
        for path, (idx, ref) in sorted(newest.items(), key=lambda kv: kv[1][0]):
            external = Path(path).is_absolute()
            full = Path(path) if external else self.run_dir / path
            if not full.exists() and external:
                # A source file outside the run folder may be moved legitimately; say so, don't fail.
                warnings.append(f"event {idx}: external input {path} is no longer present; not checked")
                continue
            if not full.exists():
                return VerifyReport(False, len(events), 0, 0,
                                    f"event {idx} ({events[idx].stage}): artifact {path} is missing (deleted)", idx)
            if sha256_tree(full) != ref.sha256:
                return VerifyReport(False, len(events), 0, 0,
                                    f"event {idx} ({events[idx].stage}): artifact {path} was modified "
                                    f"(sha256 no longer matches)", idx)
        return VerifyReport(True, len(events), len(newest), total_refs - len(newest), warnings=tuple(warnings))


def _readable(lines: list[str]) -> list[LedgerEvent]:
    """The events of these lines that parse (a damaged line is ``verify``'s to report, not append's)."""
    out = []
    for ln in lines:
        with contextlib.suppress(json.JSONDecodeError, KeyError, TypeError):
            out.append(LedgerEvent.from_dict(json.loads(ln)))
    return out


def append_event(run_dir: str | os.PathLike[str], **kwargs: Any) -> LedgerEvent:
    return Ledger(run_dir).append(**kwargs)


def verify(run_dir: str | os.PathLike[str]) -> VerifyReport:
    return Ledger(run_dir).verify()
