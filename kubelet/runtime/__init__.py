"""Container runtimes behind one interface (``base.Runtime``): ``process``, ``fake`` and ``docker``."""
