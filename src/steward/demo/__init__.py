"""The embedded demo: seeded, generated customer-support data with planted problems — labelled messages for the
classifier and conversations for the chat model."""

from steward.demo.conversations import CHAT_PLANTED_LOSS_LIMITS, ConversationPlan, generate_support_conversations
from steward.demo.generate import PLANTED_LOSS_LIMITS, DemoPlan, generate_support_dataset

__all__ = ["CHAT_PLANTED_LOSS_LIMITS", "PLANTED_LOSS_LIMITS", "ConversationPlan", "DemoPlan", "generate_support_conversations",
           "generate_support_dataset"]
