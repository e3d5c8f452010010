"""The embedded demo: a seeded, generated customer-support dataset with planted problems."""

from steward.demo.generate import PLANTED_LOSS_LIMITS, DemoPlan, generate_support_dataset

__all__ = ["PLANTED_LOSS_LIMITS", "DemoPlan", "generate_support_dataset"]
