"""The train stage: ``steward.train.run(cfg)`` fine-tunes an encoder on the data stage's splits."""

from steward.train.stage import TrainResult, run

__all__ = ["TrainResult", "run"]
