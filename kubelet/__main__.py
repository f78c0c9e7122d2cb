"""``python -m kubelet``: run a kubelet (same flags as ``pilot kubelet``)."""

from .app import main

main()
