"""``python -m proxy [flags]``: the service proxy (as ``pilot proxy``).

``python -m proxy dns [flags]`` and ``python -m proxy ingress [flags]`` run the cluster DNS and the
ingress controller (as ``pilot dns`` and ``pilot ingress``).
"""

import sys

argv = sys.argv[1:]
command = argv[0] if argv and argv[0] in ("proxy", "dns", "ingress") else "proxy"
if argv[:1] == [command]:
    argv = argv[1:]
if command == "dns":
    from .dns import main
elif command == "ingress":
    from .ingress import main
else:
    from .app import main
main(argv)
