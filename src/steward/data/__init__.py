"""The data stage: ``steward.data.run(cfg)`` turns raw labelled text into clean, safe, balanced splits."""

from steward.data.stage import DataResult, run

__all__ = ["DataResult", "run"]
