"""The ``steward`` command: thin typer wrappers over the library API."""
