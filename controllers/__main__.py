"""``python -m controllers``: run a controller-manager (same flags as ``pilot controller-manager``)."""

from .app import main

main()
