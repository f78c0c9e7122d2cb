"""Pilothouse service networking: the service proxy (ClusterIP, NodePort, LoadBalancer), cluster DNS, ingress.

Three processes, each talking to the API server only over HTTPS through ``apiclient``:
``pilot proxy`` (``app``), ``pilot dns`` (``dns``) and ``pilot ingress`` (``ingress``). Pure rules
(which addresses a Service is served on, which endpoints are usable, ingress path matching, DNS
answers) live in ``model``, ``balancer``, ``routes`` and ``dnszone``; the rest is I/O around them.
"""
