"""resource.Quantity: parsing, canonical form, rounding, arithmetic."""

from __future__ import annotations

import copy
import math
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apimachinery.quantity import (
    ERR_FORMAT_WRONG,
    ERR_SUFFIX,
    Format,
    Quantity,
    QuantityError,
    canonical_quantity,
    parse_quantity,
)


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        # from the brief
        ("100m", "100m"),
        ("0.5", "500m"),
        ("1", "1"),
        ("1Ki", "1Ki"),
        ("128Mi", "128Mi"),
        ("1Gi", "1Gi"),
        ("1k", "1k"),
        ("1M", "1M"),
        ("1e3", "1e3"),
        ("1.5Gi", "1536Mi"),
        ("12E", "12E"),
        ("1000m", "1"),
        ("1536Mi", "1536Mi"),
        # upstream's canonicalisation table
        ("1024Mi", "1Gi"),
        ("1000M", "1G"),
        (".001Ki", "1024m"),
        (".000001Ki", "1024u"),
        ("1080m", "1080m"),
        ("1.08", "1080m"),
        ("0.001T", "1G"),
        ("1000000000n", "1"),
        ("1000u", "1m"),
        ("307200Ki", "300Mi"),
        ("1025", "1025"),
        ("5000m", "5"),
        (".001e12", "1e9"),
        ("0.001e0", "1e-3"),
        ("1000e-12", "1e-9"),
        ("80e-3", "80e-3"),
        ("300e6", "300e6"),
        ("1.5e3", "1500"),
        ("1E3", "1e3"),
        ("1e+3", "1e3"),
        ("1E", "1E"),
        ("1P", "1P"),
        ("1T", "1T"),
        ("1Ti", "1Ti"),
        ("1Pi", "1Pi"),
        ("1Ei", "1Ei"),
        ("2048Ei", "9223372036854775807"),  # binary quantities are capped at int64 max
        ("9223372036854775807Ki", "9223372036854775807"),
        ("1000E", "1000E"),  # beyond the largest SI suffix: keep E, never drop it
        # zeros and signs
        ("0", "0"),
        ("00", "0"),
        ("-0", "0"),
        ("0Ki", "0"),
        ("0.0", "0"),
        ("+1", "1"),
        ("-1", "-1"),
        ("-1.5Gi", "-1536Mi"),
        ("-100m", "-100m"),
        # fraction forms the scanner allows
        ("1.", "1"),
        (".5", "500m"),
        ("1.G", "1G"),
        ("001.500", "1500m"),
        # precision finer than nano rounds up
        ("3.001n", "4n"),
        ("0.1m", "100u"),
        ("1e-20", "1e-9"),
        ("0.0000000001", "1n"),
        ("-0.0000000001", "-1n"),
        ("0.0001Ki", "102400u"),  # binary value below one prints as decimal
        ("1.1Ki", "1126400m"),  # fractional binary prints as decimal
    ],
)
def test_canonical(text: str, canonical: str) -> None:
    q = Quantity(text)
    assert str(q) == canonical
    assert Quantity(canonical) == q  # the canonical form parses back to the same value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", ERR_FORMAT_WRONG),
        ("1.1.M", ERR_FORMAT_WRONG),
        ("1+1.0M", ERR_FORMAT_WRONG),
        ("0.1mi", ERR_SUFFIX),
        ("0.1am", ERR_FORMAT_WRONG),
        ("aoeu", ERR_FORMAT_WRONG),
        (".5i", ERR_SUFFIX),
        ("1i", ERR_SUFFIX),
        ("-3.01i", ERR_SUFFIX),
        ("-3.01e-", ERR_SUFFIX),
        ("1e", ERR_SUFFIX),
        ("1KiB", ERR_FORMAT_WRONG),
        ("1kb", ERR_FORMAT_WRONG),
        (" 1", ERR_FORMAT_WRONG),
        ("1 ", ERR_FORMAT_WRONG),
        ("1\n", ERR_FORMAT_WRONG),
        ("١", ERR_FORMAT_WRONG),  # non-ASCII digits are not digits here
        ("1e99999", "quantity is too large"),
        ("1" * 5000, "quantity has too many digits"),
    ],
)
def test_rejects(text: str, message: str) -> None:
    with pytest.raises(QuantityError) as info:
        Quantity(text)
    assert str(info.value) == message


def test_error_message_is_upstreams() -> None:
    assert ERR_FORMAT_WRONG == (
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    )
    assert issubclass(QuantityError, ValueError)


def test_extreme_inputs_stay_cheap() -> None:
    assert str(Quantity("0." + "0" * 100000 + "1")) == "1n"
    assert str(Quantity("1e-999999999")) == "1e-9"
    assert str(Quantity("-1e-999999999")) == "-1e-9"
    assert str(Quantity("0e999999999")) == "0"


def test_formats() -> None:
    assert Quantity("1Gi").format is Format.BINARY_SI
    assert Quantity("1G").format is Format.DECIMAL_SI
    assert Quantity("1e9").format is Format.DECIMAL_EXPONENT
    assert Quantity("0.5Ki").format is Format.BINARY_SI  # 512, still binary
    assert Quantity("0.0001Ki").format is Format.DECIMAL_SI  # below one


def test_numbers_from_json() -> None:
    assert str(Quantity(2)) == "2"
    assert str(Quantity(0.5)) == "500m"
    assert str(Quantity(1e-05)) == "10u"
    assert str(Quantity(2.0)) == "2"
    assert str(Quantity(1e20)) == "100E"
    assert Quantity.from_json(" 100m ") == Quantity("100m")  # UnmarshalJSON trims strings
    assert Quantity.from_json(3) == Quantity("3")
    assert canonical_quantity("1000m") == "1"
    assert canonical_quantity(1) == "1"
    for bad in (True, None, [1], float("nan"), float("inf")):
        with pytest.raises(QuantityError):
            Quantity(bad)  # type: ignore[arg-type]
    with pytest.raises(QuantityError):
        parse_quantity(5)  # type: ignore[arg-type]


def test_values_round_up() -> None:
    assert Quantity("1500m").value() == 2
    assert Quantity("2").value() == 2
    assert Quantity("1Ki").value() == 1024
    assert Quantity("100m").milli_value() == 100
    assert Quantity("0.1").milli_value() == 100
    assert Quantity("1.5n").milli_value() == 1
    assert Quantity("1n").value() == 1
    assert Quantity("-1500m").value() == -1  # ceiling
    assert Quantity("1k").scaled_value(3) == 1
    assert Quantity("1").scaled_value(-9) == 10**9
    assert Quantity("1").scaled_value(-12) == 10**12
    assert Quantity("123n").nanos == 123
    assert Quantity("1.5").as_fraction() == Fraction(3, 2)
    assert Quantity("1.5").as_decimal() == Decimal("1.5")
    assert float(Quantity("250m")) == 0.25


def test_arithmetic_and_comparison() -> None:
    assert Quantity("1Gi") + Quantity("512Mi") == Quantity("1.5Gi")
    assert str(Quantity("1Gi") + Quantity("512Mi")) == "1536Mi"
    assert str(Quantity("0") + Quantity("1Ki")) == "1Ki"  # zero takes the other's format
    assert str(Quantity("100m") + Quantity("1Ki")) == "1024100m"  # left format wins
    assert str(Quantity("1") - Quantity("250m")) == "750m"
    assert str(Quantity("0") - Quantity("1Mi")) == "-1Mi"
    assert str(-Quantity("1Gi")) == "-1Gi"
    assert str(abs(Quantity("-2"))) == "2"
    assert str(Quantity("100m") * 3) == "300m"
    assert str(3 * Quantity("1Gi")) == "3Gi"
    assert Quantity("100m") < Quantity("1") <= Quantity("1000m") < Quantity("1Ki")
    assert Quantity("1000m") == Quantity("1")
    assert hash(Quantity("1000m")) == hash(Quantity("1"))
    assert len({Quantity("1"), Quantity("1000m"), Quantity("1e0")}) == 1
    assert Quantity("1").__eq__("1") is NotImplemented
    assert Quantity("1") != "1"
    assert not Quantity("0") and Quantity("1n")
    assert Quantity("0").is_zero() and Quantity("-1").sign() == -1 and Quantity("0").sign() == 0
    with pytest.raises(TypeError):
        _ = Quantity("1") + 1  # type: ignore[operator]
    with pytest.raises(TypeError):
        _ = Quantity("1") < 1  # type: ignore[operator]
    with pytest.raises(TypeError):
        _ = Quantity("1") * 1.5  # type: ignore[operator]
    with pytest.raises(TypeError):
        _ = Quantity("1") - 1  # type: ignore[operator]


def test_constructors_immutability_and_copy() -> None:
    assert str(Quantity.from_milli(1500)) == "1500m"
    assert str(Quantity.from_int(2048, Format.BINARY_SI)) == "2Ki"
    assert str(Quantity.from_nanos(5)) == "5n"
    assert str(Quantity(Quantity("1Gi"))) == "1Gi"
    assert str(Quantity("1Gi").with_format(Format.DECIMAL_SI)) == "1073741824"
    assert str(Quantity()) == "0"
    q = Quantity("1Gi")
    with pytest.raises(AttributeError):
        q._nanos = 1  # type: ignore[misc]
    assert copy.deepcopy(q) == q and copy.copy(q) == q
    assert repr(q) == "Quantity('1Gi')"
    assert q.to_json() == "1Gi"


# --- properties ---------------------------------------------------------------------------

_SUFFIXES = ["", "n", "u", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "e3", "e-3", "E6", "e0"]
_SUFFIX_VALUE = {
    "": Fraction(1), "n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 1000),
    "k": Fraction(10**3), "M": Fraction(10**6), "G": Fraction(10**9), "T": Fraction(10**12),
    "P": Fraction(10**15), "E": Fraction(10**18), "Ki": Fraction(2**10), "Mi": Fraction(2**20),
    "Gi": Fraction(2**30), "Ti": Fraction(2**40), "Pi": Fraction(2**50), "Ei": Fraction(2**60),
    "e3": Fraction(10**3), "e-3": Fraction(1, 10**3), "E6": Fraction(10**6), "e0": Fraction(1),
}

quantity_texts = st.builds(
    lambda sign, whole, frac, suffix: f"{sign}{whole}{'.' + frac if frac is not None else ''}{suffix}",
    st.sampled_from(["", "-", "+"]),
    st.from_regex(r"[0-9]{1,12}", fullmatch=True),
    st.one_of(st.none(), st.from_regex(r"[0-9]{0,12}", fullmatch=True)),
    st.sampled_from(_SUFFIXES),
)


@settings(max_examples=60, deadline=None)
@given(quantity_texts)
def test_parse_matches_exact_arithmetic(text: str) -> None:
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("+-")
    suffix = next(s for s in sorted(_SUFFIXES, key=len, reverse=True) if s and body.endswith(s)) if any(
        s and body.endswith(s) for s in _SUFFIXES
    ) else ""
    number = body[: len(body) - len(suffix)] if suffix else body
    exact = Fraction(Decimal(number + ("0" if number.endswith(".") else ""))) * _SUFFIX_VALUE[suffix]
    nanos = math.ceil(exact * 10**9)
    if suffix in ("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"):
        nanos = min(nanos, ((1 << 63) - 1) * 10**9)
    assert Quantity(text).nanos == sign * nanos


@settings(max_examples=60, deadline=None)
@given(quantity_texts)
def test_canonical_round_trip(text: str) -> None:
    q = Quantity(text)
    canonical = str(q)
    again = Quantity(canonical)
    assert again == q
    assert str(again) == canonical  # canonical form is a fixed point
    assert not canonical.startswith("+") and "." not in canonical


@settings(max_examples=60, deadline=None)
@given(st.integers(-(10**20), 10**20), st.sampled_from(list(Format)))
def test_nanos_round_trip_in_every_format(nanos: int, fmt: Format) -> None:
    q = Quantity.from_nanos(nanos, fmt)
    assert Quantity(str(q)) == q


@settings(max_examples=60, deadline=None)
@given(quantity_texts, quantity_texts)
def test_addition_is_exact(a: str, b: str) -> None:
    qa, qb = Quantity(a), Quantity(b)
    assert (qa + qb).as_fraction() == qa.as_fraction() + qb.as_fraction()
    assert (qa + qb) - qb == qa
    assert (qa < qb) == (qa.as_fraction() < qb.as_fraction())


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=20))
def test_garbage_is_rejected_cleanly(text: str) -> None:
    try:
        q = Quantity(text)
    except QuantityError:
        return
    assert Quantity(str(q)) == q
