"""``python -m pilot``: the same as the ``pilot`` command."""

from .cli import app

app()
