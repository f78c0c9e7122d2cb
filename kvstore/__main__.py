"""``python -m kvstore``: run one store member (same flags as ``pilot kvstore``)."""

from .member import main

main()
