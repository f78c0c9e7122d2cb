"""``python -m apiserver``: run an API server (same flags as ``pilot apiserver``)."""

from .app import main

main()
