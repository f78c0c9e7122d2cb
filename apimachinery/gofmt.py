"""Render values the way Go's ``fmt`` does, so our messages match the apiserver's byte for byte.

Kubernetes builds most user-facing error strings with ``%q`` (``strconv.Quote``) and ``%v``.
Clients and tests compare those strings, so we reproduce the two verbs for the value types that
occur in decoded JSON: ``str``, ``bool``, ``int``, ``float``, ``None``, lists and dicts.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from types import MappingProxyType
from typing import Any

__all__ = ["GoVerbatim", "go_quote", "go_value", "go_float"]


class GoVerbatim(str):
    """A value already rendered the way Go prints it (e.g. a struct under ``%#v``): ``go_value`` keeps it."""

_SIMPLE_ESCAPES = MappingProxyType({
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    "\\": "\\\\",
    '"': '\\"',
})


def go_quote(s: str) -> str:
    """Return ``s`` double-quoted with Go escapes, like ``strconv.Quote`` / ``%q``.

    Printable characters (Go's ``unicode.IsPrint``, which matches ``str.isprintable``) are kept
    verbatim, so ``"héllo"`` stays readable; control characters become ``\\x..``/``\\u....``.
    """
    out = ['"']
    for ch in s:
        esc = _SIMPLE_ESCAPES.get(ch)
        if esc is not None:
            out.append(esc)
            continue
        if ch.isprintable():
            out.append(ch)
            continue
        code = ord(ch)
        if code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def go_float(f: float) -> str:
    """Format a float like Go's ``%v`` (``strconv.FormatFloat(f, 'g', -1, 64)``).

    Shortest round-trip digits; Go switches to exponent form when the decimal exponent is
    below -4 or at least 6 (it uses precision 6 for that decision), e.g. ``1e+06`` for one
    million and ``2`` for ``2.0``.
    """
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    sign = "-" if math.copysign(1.0, f) < 0 else ""
    if f == 0:
        return sign + "0"
    # repr() yields the shortest digits that round-trip, as Go's shortest formatting does.
    _, digit_tuple, exponent = Decimal(repr(abs(f))).as_tuple()
    assert isinstance(exponent, int)
    raw = "".join(map(str, digit_tuple)).lstrip("0")
    digits = raw.rstrip("0")
    exponent += len(raw) - len(digits)
    nd = len(digits)
    dp = nd + exponent  # digits before the decimal point
    x = dp - 1
    if x < -4 or x >= 6:
        mantissa = digits[0] + ("." + digits[1:] if nd > 1 else "")
        return f"{sign}{mantissa}e{'-' if x < 0 else '+'}{abs(x):02d}"
    if dp <= 0:
        return f"{sign}0.{'0' * -dp}{digits}"
    if dp >= nd:
        return f"{sign}{digits}{'0' * (dp - nd)}"
    return f"{sign}{digits[:dp]}.{digits[dp:]}"


def go_value(value: Any) -> str:
    """Render a bad value the way ``field.Error`` does (``%v`` for scalars, JSON otherwise)."""
    if isinstance(value, GoVerbatim):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, str):
        return go_quote(value)
    if value is None:
        return "null"
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return repr(value)
