"""Pilothouse apimachinery: pure data logic shared by every component (see ../shared/DESIGN.md).

No I/O happens here. Modules:

- ``errors``: ``StatusError`` and constructors for every ``metav1.Status`` failure clients know.
- ``validation``: name/label/annotation checks with Kubernetes' wording; ``FieldError``.
- ``selectors``: label and field selectors (parse, match, print).
- ``quantity``: exact ``resource.Quantity`` arithmetic and canonical formatting.
- ``patch``: JSON patch, JSON merge patch and strategic merge patch (+ built-in merge keys).
- ``meta``: helpers for objects as plain dicts, timestamps, UIDs, group/version/kind identities.
- ``gofmt``: Go ``%q``/``%v`` rendering so messages match the apiserver's.
"""
