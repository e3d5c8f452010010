"""The embedded demo: a seeded, generated customer-support dataset with planted problems."""

from steward.demo.generate import DemoPlan, generate_support_dataset

__all__ = ["DemoPlan", "generate_support_dataset"]
