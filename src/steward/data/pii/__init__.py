"""PII detection and transformation: detectors find spans and say why; operators turn them into new text."""

from steward.data.pii.engine import PIIEngine
from steward.data.pii.operators import OPERATORS, PIIKey, apply_operators
from steward.data.pii.recognizers import RECOGNIZERS, PatternRecognizer

__all__ = ["OPERATORS", "RECOGNIZERS", "PIIEngine", "PIIKey", "PatternRecognizer", "apply_operators"]
