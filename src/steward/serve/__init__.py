"""The serve stage: a guarded inference service with API keys, an audit log, metrics, drift and feedback."""

from steward.serve.app import create_app

__all__ = ["create_app"]
