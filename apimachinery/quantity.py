"""``resource.Quantity``: exact fixed-point amounts such as ``100m``, ``1.5Gi`` or ``12e6``.

Requests, limits, capacity and quotas are compared and summed by the scheduler and controllers,
so we never use floats. A ``Quantity`` stores its value as an integer number of nano-units
(Kubernetes rounds anything finer *up* to ``1n``) plus the ``Format`` its suffix came in, which
the canonical form reuses: ``1.5Gi`` prints as ``1536Mi``, ``0.5`` as ``500m``, ``1e3`` stays ``1e3``.

Parsing follows ``resource.ParseQuantity`` (same grammar, same error texts). Two deliberate
differences: values are always re-emitted in canonical form (upstream echoes some already-
canonical inputs such as ``+1`` verbatim), and absurd inputs (more than 63 integer digits, where
upstream's int64 accessors overflow anyway, or more than 1000 significant digits) are rejected
instead of allocated.
"""

from __future__ import annotations

import functools
import math
import re
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from types import MappingProxyType
from typing import Any, Final

__all__ = ["Format", "Quantity", "QuantityError", "parse_quantity", "canonical_quantity"]

_SPLIT_RE_TEXT: Final = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
ERR_FORMAT_WRONG: Final = f"quantities must match the regular expression '{_SPLIT_RE_TEXT}'"
ERR_NUMERIC: Final = "unable to parse numeric part of quantity"
ERR_SUFFIX: Final = "unable to parse quantity's suffix"

_NANO: Final = 10**9
_MAX_INT64: Final = (1 << 63) - 1
_MAX_INTEGER_DIGITS: Final = 63
_MAX_SIGNIFICANT_DIGITS: Final = 1000
_DIGITS: Final = frozenset("0123456789")
_SUFFIX_CHARS: Final = frozenset("eEinumkKMGTP")
_SIGNED_INT_RE: Final = re.compile(r"[+-]?[0-9]+")


class Format(StrEnum):
    DECIMAL_EXPONENT = "DecimalExponent"  # 12e6
    BINARY_SI = "BinarySI"  # 12Mi
    DECIMAL_SI = "DecimalSI"  # 12M


class QuantityError(ValueError):
    """A string that is not a quantity; the message is upstream's."""


_DECIMAL_SUFFIXES: Final = MappingProxyType({
    "n": -9,
    "u": -6,
    "m": -3,
    "": 0,
    "k": 3,
    "M": 6,
    "G": 9,
    "T": 12,
    "P": 15,
    "E": 18,
})
_DECIMAL_SUFFIX_BY_EXP: Final = MappingProxyType({v: k for k, v in _DECIMAL_SUFFIXES.items()})
_BINARY_SUFFIXES: Final = MappingProxyType({"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60})
_BINARY_SUFFIX_BY_EXP: Final = MappingProxyType({v: k for k, v in _BINARY_SUFFIXES.items()})


def _scan(text: str) -> tuple[bool, str, str, str]:
    """Split into (positive, integer digits, fraction digits, suffix) like ``parseQuantityString``."""
    positive = True
    pos, end = 0, len(text)
    if text[0] in "+-":
        positive = text[0] == "+"
        pos = 1
    while pos < end and text[pos] == "0":
        pos += 1
    if pos >= end:
        return positive, "0", "", ""
    start = pos
    while pos < end and text[pos] in _DIGITS:
        pos += 1
    num = text[start:pos] or "0"
    denom = ""
    if pos < end and text[pos] == ".":
        pos += 1
        start = pos
        while pos < end and text[pos] in _DIGITS:
            pos += 1
        denom = text[start:pos]
    suffix_start = pos
    while pos < end and text[pos] in _SUFFIX_CHARS:
        pos += 1
    if pos < end and text[pos] in "+-":
        pos += 1
    while pos < end and text[pos] in _DIGITS:
        pos += 1
    if pos < end:
        raise QuantityError(ERR_FORMAT_WRONG)
    return positive, num, denom, text[suffix_start:]


def _interpret(suffix: str) -> tuple[int, int, Format]:
    """(base, exponent, format) of a suffix, or ``QuantityError``."""
    if suffix in _DECIMAL_SUFFIXES:
        return 10, _DECIMAL_SUFFIXES[suffix], Format.DECIMAL_SI
    if suffix in _BINARY_SUFFIXES:
        return 2, _BINARY_SUFFIXES[suffix], Format.BINARY_SI
    if len(suffix) > 1 and suffix[0] in "eE" and _SIGNED_INT_RE.fullmatch(suffix[1:]):
        return 10, int(suffix[1:]), Format.DECIMAL_EXPONENT
    raise QuantityError(ERR_SUFFIX)


def _to_nanos(num: str, denom: str, base: int, exponent: int) -> int:
    """Magnitude in nano-units, rounded up (upstream: "if you want some, you get some")."""
    significant = (num + denom).lstrip("0")
    if not significant:
        return 0
    if len(significant) > _MAX_SIGNIFICANT_DIGITS:
        raise QuantityError("quantity has too many digits")
    mantissa = int(significant)
    scale = -len(denom)  # value = mantissa * 10**scale * base**exponent
    if base == 10:
        scale += exponent
        exponent = 0
    # Integer digits of the result, to refuse values nobody can use before allocating them.
    int_digits = len(significant) + scale + (exponent * 3 // 10 + 1 if exponent else 0)
    if int_digits > _MAX_INTEGER_DIGITS:
        raise QuantityError("quantity is too large")
    if exponent == 0 and scale + 9 < -(len(significant) + 1):
        return 1  # far below one nano-unit: rounds up to 1n without building a huge denominator
    value = Fraction(mantissa) * (Fraction(10) ** (scale + 9)) * (2**exponent)
    return math.ceil(value)


def parse_quantity(text: str) -> Quantity:
    """``resource.ParseQuantity``. Raises ``QuantityError`` with upstream's message."""
    if not isinstance(text, str):
        raise QuantityError(ERR_FORMAT_WRONG)
    if not text:
        raise QuantityError(ERR_FORMAT_WRONG)
    if text == "0":
        return Quantity._make(0, Format.DECIMAL_SI)
    positive, num, denom, suffix = _scan(text)
    base, exponent, fmt = _interpret(suffix)
    nanos = _to_nanos(num, denom, base, exponent)
    if fmt is Format.BINARY_SI:
        # Upstream caps binary quantities at int64 max and shows sub-unit ones as decimal.
        nanos = min(nanos, _MAX_INT64 * _NANO)
        if 0 < nanos < _NANO:
            fmt = Format.DECIMAL_SI
    return Quantity._make(nanos if positive else -nanos, fmt)


def _canonical(nanos: int, fmt: Format) -> str:
    """``CanonicalizeBytes``: integer mantissa, largest suffix that loses nothing."""
    if nanos == 0:
        return "0"
    sign = "-" if nanos < 0 else ""
    n = abs(nanos)
    if fmt is Format.BINARY_SI:
        if n < 1024 * _NANO or n % _NANO:
            fmt = Format.DECIMAL_SI  # small or fractional binary values print as decimal
        else:
            v, e = n // _NANO, 0
            while v % 1024 == 0 and e < 6:
                v //= 1024
                e += 1
            return f"{sign}{v}{_BINARY_SUFFIX_BY_EXP.get(e * 10, '')}"
    m, e = n, -9
    while m % 10 == 0:
        m //= 10
        e += 1
    r = e % 3  # move the exponent down to a multiple of three
    m *= 10**r
    e -= r
    if fmt is Format.DECIMAL_EXPONENT:
        return f"{sign}{m}" + (f"e{e}" if e else "")
    if e > 18:  # no SI suffix beyond E; upstream would drop the suffix, we keep the value right
        m *= 10 ** (e - 18)
        e = 18
    return f"{sign}{m}{_DECIMAL_SUFFIX_BY_EXP[e]}"


@functools.total_ordering
class Quantity:
    """An exact amount plus the suffix family used to print it. Immutable and hashable.

    ``Quantity("250m")``, ``Quantity(2)`` and ``Quantity(0.5)`` all parse like JSON input does
    (JSON numbers are accepted by upstream's decoder too).
    """

    __slots__ = ("_nanos", "_format")

    def __init__(self, value: Any = "0") -> None:
        if isinstance(value, Quantity):
            nanos, fmt = value._nanos, value._format
        elif isinstance(value, str):
            parsed = parse_quantity(value)
            nanos, fmt = parsed._nanos, parsed._format
        elif isinstance(value, int | float) and not isinstance(value, bool):
            parsed = parse_quantity(_number_text(value))
            nanos, fmt = parsed._nanos, parsed._format
        else:
            raise QuantityError(ERR_FORMAT_WRONG)
        self._nanos = nanos
        self._format = fmt

    @classmethod
    def _make(cls, nanos: int, fmt: Format) -> Quantity:
        q = object.__new__(cls)
        q._nanos = nanos
        q._format = fmt
        return q

    @classmethod
    def from_nanos(cls, nanos: int, fmt: Format = Format.DECIMAL_SI) -> Quantity:
        return cls._make(int(nanos), fmt)

    @classmethod
    def from_milli(cls, milli: int, fmt: Format = Format.DECIMAL_SI) -> Quantity:
        return cls._make(int(milli) * 10**6, fmt)

    @classmethod
    def from_int(cls, value: int, fmt: Format = Format.DECIMAL_SI) -> Quantity:
        return cls._make(int(value) * _NANO, fmt)

    @classmethod
    def from_json(cls, value: Any) -> Quantity:
        """Decode a JSON value like ``UnmarshalJSON``: strings are trimmed, numbers accepted."""
        if isinstance(value, str):
            return parse_quantity(value.strip())
        return cls(value)

    @property
    def format(self) -> Format:
        return self._format

    @property
    def nanos(self) -> int:
        return self._nanos

    def is_zero(self) -> bool:
        return self._nanos == 0

    def sign(self) -> int:
        return (self._nanos > 0) - (self._nanos < 0)

    def scaled_value(self, scale: int) -> int:
        """Value in units of ``10**scale``, rounded up (``ScaledValue``): scale -3 = milli."""
        shift = scale + 9
        if shift <= 0:
            return self._nanos * 10 ** (-shift)
        return -(-self._nanos // 10**shift)

    def value(self) -> int:
        """Whole units, rounded up: ``Quantity("1500m").value() == 2``."""
        return self.scaled_value(0)

    def milli_value(self) -> int:
        """Milli-units, rounded up: ``Quantity("0.1").milli_value() == 100``."""
        return self.scaled_value(-3)

    def as_fraction(self) -> Fraction:
        return Fraction(self._nanos, _NANO)

    def as_decimal(self) -> Decimal:
        return Decimal(self._nanos).scaleb(-9)

    def __float__(self) -> float:
        return self._nanos / _NANO

    def to_string(self) -> str:
        return _canonical(self._nanos, self._format)

    def to_json(self) -> str:
        """The wire form: always a string (the Python client rejects numbers)."""
        return self.to_string()

    def __str__(self) -> str:
        return self.to_string()

    def __repr__(self) -> str:
        return f"Quantity({self.to_string()!r})"

    def with_format(self, fmt: Format) -> Quantity:
        return Quantity._make(self._nanos, fmt)

    # Arithmetic keeps the left operand's format unless it is zero (upstream ``Add``/``Sub``).
    def _combine(self, other: Quantity, nanos: int) -> Quantity:
        return Quantity._make(nanos, other._format if self._nanos == 0 else self._format)

    def __add__(self, other: object) -> Quantity:
        if not isinstance(other, Quantity):
            return NotImplemented
        return self._combine(other, self._nanos + other._nanos)

    def __sub__(self, other: object) -> Quantity:
        if not isinstance(other, Quantity):
            return NotImplemented
        return self._combine(other, self._nanos - other._nanos)

    def __neg__(self) -> Quantity:
        return Quantity._make(-self._nanos, self._format)

    def __abs__(self) -> Quantity:
        return Quantity._make(abs(self._nanos), self._format)

    def __mul__(self, factor: object) -> Quantity:
        if isinstance(factor, bool) or not isinstance(factor, int):
            return NotImplemented
        return Quantity._make(self._nanos * factor, self._format)

    __rmul__ = __mul__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Quantity):
            return NotImplemented
        return self._nanos == other._nanos

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Quantity):
            return NotImplemented
        return self._nanos < other._nanos

    def __hash__(self) -> int:
        return hash(self._nanos)

    def __bool__(self) -> bool:
        return self._nanos != 0

    def __setattr__(self, name: str, value: Any) -> None:
        if hasattr(self, name):
            raise AttributeError("Quantity is immutable")
        object.__setattr__(self, name, value)


def _number_text(value: int | float) -> str:
    """JSON numbers reach us as int/float after decoding; the original spelling is lost, so
    spell them positionally (``0.00001``, not ``1e-05``), the way people write them in manifests."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise QuantityError(ERR_FORMAT_WRONG)
        return format(Decimal(repr(value)), "f")
    return str(value)


def canonical_quantity(value: Any) -> str:
    """Canonical string of a JSON quantity (what the apiserver stores for ``cpu: "1000m"``)."""
    return Quantity.from_json(value).to_string()
