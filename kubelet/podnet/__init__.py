"""A pod's own port space for Python programs on the ``process`` runtime (see ``sitecustomize.py``).

This directory is put first on ``PYTHONPATH`` of every process-runtime container; nothing in
Pilothouse imports it as a package.
"""
