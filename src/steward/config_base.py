"""What every stage's config is built on, and its digest. Each stage package holds its own ``config.py``
on this base; ``steward.config`` only composes them into ``RunConfig``, so a stage never imports the stages
after it through their configs."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from steward.hashing import digest


class StageConfig(BaseModel):
    """Frozen, unknown keys refused, defaults validated: a typo in a config is an error, never ignored."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)


def config_digest(cfg: BaseModel) -> str:
    """The hash of a config as the ledger and the run folder record it."""
    return digest(cfg.model_dump(mode="json"))
