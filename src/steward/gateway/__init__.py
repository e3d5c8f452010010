"""The guarded chat gateway: an OpenAI-compatible API in front of a generative model, behind the serve
stage's keys, guards and audit log."""

from steward.gateway.app import create_app

__all__ = ["create_app"]
