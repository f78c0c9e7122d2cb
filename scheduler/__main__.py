"""``python -m scheduler``: run a scheduler (same flags as ``pilot scheduler``)."""

from .app import main

main()
