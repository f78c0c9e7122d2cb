"""Binding "every address" in a process-runtime pod binds the pod's own address.

In Kubernetes a pod has its own network namespace: a server that binds ``0.0.0.0:8080`` listens on
the pod IP, and three replicas on one node never collide. Process-runtime pods share the host's
network namespace; each has a loopback pod IP (``$POD_IP``) instead. Python imports this module at
start-up (``sitecustomize``, found first on ``PYTHONPATH``), and it makes a wildcard bind of an IPv4
socket bind ``$POD_IP``, and of a dual-stack IPv6 socket bind ``::ffff:$POD_IP``, so
``python3 -m http.server 8080`` behaves as in a pod: reachable at the pod IP (and through Services),
no clash with its other replicas or with ports of the host.

Only Python programs started by the process runtime are affected, and only their wildcard binds;
explicit addresses are left as they are. Programs bound to ``127.0.0.1`` stay host-wide, as the
README says. Any other ``sitecustomize`` on the path (a distribution's) still runs after this one.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys


def _pod_ip() -> str | None:
    value = os.environ.get("POD_IP", "")
    try:
        return value if ipaddress.ip_address(value).version == 4 else None
    except ValueError:
        return None


def _install(pod_ip: str) -> None:
    original = socket.socket.bind

    def bind(self: socket.socket, address: object) -> None:
        if isinstance(address, tuple) and address and address[0] in ("", "0.0.0.0") \
                and self.family == socket.AF_INET:
            address = (pod_ip, *address[1:])
        elif isinstance(address, tuple) and address and address[0] in ("", "::") \
                and self.family == socket.AF_INET6 \
                and not self.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY):
            address = (f"::ffff:{pod_ip}", *address[1:])
        original(self, address)

    bind.__doc__ = original.__doc__
    socket.socket.bind = bind  # type: ignore[method-assign]


def _chain() -> None:
    """Run the ``sitecustomize`` this one hides (the next one on ``sys.path``), if there is one."""
    here = os.path.dirname(os.path.abspath(__file__))
    for entry in sys.path:
        if not entry or os.path.abspath(entry) == here:
            continue
        path = os.path.join(entry, "sitecustomize.py")
        if os.path.isfile(path):
            with open(path, "rb") as f:
                code = compile(f.read(), path, "exec")
            exec(code, {"__name__": "sitecustomize", "__file__": path})
            return


_ip = _pod_ip()
if _ip is not None:
    _install(_ip)
_chain()
