"""Label and field selectors: parsing, matching and printing, as ``k8s.io/apimachinery`` does.

Label selectors arrive as strings in ``?labelSelector=`` (``a=b,c in (x,y),!d``) and as the
structured ``metav1.LabelSelector`` inside specs (Deployment ``spec.selector``); both become a
``LabelSelector``. The string grammar and every error message follow ``labels.Parse``, because
clients show those messages to users. Field selectors (``?fieldSelector=``) only know ``=``,
``==`` and ``!=`` and use backslash escapes for ``\\``, ``,`` and ``=`` in values.

Parse errors raise ``StatusError`` 400 BadRequest, which is what the apiserver answers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final

from .errors import aggregate_messages, bad_request
from .gofmt import go_quote
from .validation import FieldError, Path, is_qualified_name, is_valid_label_value, validate_labels

__all__ = [
    "Operator",
    "Requirement",
    "LabelSelector",
    "FieldRequirement",
    "FieldSelector",
    "validate_label_selector",
    "escape_field_value",
    "unescape_field_value",
    "field_getter",
]


class Operator(StrEnum):
    """``selection.Operator`` values (their string form appears in error messages)."""

    IN = "in"
    NOT_IN = "notin"
    EQUALS = "="
    DOUBLE_EQUALS = "=="
    NOT_EQUALS = "!="
    EXISTS = "exists"
    DOES_NOT_EXIST = "!"
    GREATER_THAN = "gt"
    LESS_THAN = "lt"


_BINARY_OPERATORS: Final = (
    Operator.IN,
    Operator.NOT_IN,
    Operator.EQUALS,
    Operator.DOUBLE_EQUALS,
    Operator.NOT_EQUALS,
    Operator.GREATER_THAN,
    Operator.LESS_THAN,
)
_VALID_OPERATORS: Final = _BINARY_OPERATORS + (Operator.EXISTS, Operator.DOES_NOT_EXIST)

# Go's strconv.ParseInt(s, 10, 64): optional sign, ASCII digits, int64 range.
_INT_RE: Final = re.compile(r"[+-]?[0-9]+")
_INT64_MIN: Final = -(1 << 63)
_INT64_MAX: Final = (1 << 63) - 1


def _parse_int64(text: str) -> int | None:
    if not _INT_RE.fullmatch(text):
        return None
    value = int(text)
    return value if _INT64_MIN <= value <= _INT64_MAX else None


class _SelectorError(ValueError):
    """Internal: a parse/validation failure whose text is the upstream message."""


def _label_key_error(key: str, path: str) -> FieldError | None:
    msgs = is_qualified_name(key)
    return FieldError.invalid(path, key, "; ".join(msgs)) if msgs else None


@dataclass(frozen=True, slots=True)
class Requirement:
    """One clause of a label selector: ``key op values``."""

    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    @classmethod
    def new(cls, key: str, operator: Operator | str, values: Iterable[str] = ()) -> Requirement:
        """Validated constructor (``labels.NewRequirement``); raises 400 on a bad clause."""
        try:
            return cls._new(key, operator, tuple(values))
        except _SelectorError as exc:
            raise bad_request(str(exc)) from None

    @classmethod
    def _new(cls, key: str, operator: Operator | str, values: tuple[str, ...], path: str = "") -> Requirement:
        # With no path, upstream renders the key path as "key" and value paths as "values[i][key]".
        errs: list[FieldError] = []
        key_err = _label_key_error(key, f"{path}.key" if path else "key")
        if key_err:
            errs.append(key_err)
        values_path = f"{path}.values" if path else "values"
        try:
            op = Operator(operator)
        except ValueError:
            op = None
        if op in (Operator.IN, Operator.NOT_IN):
            if not values:
                errs.append(FieldError.invalid(values_path, list(values), "for 'in', 'notin' operators, values set can't be empty"))
        elif op in (Operator.EQUALS, Operator.DOUBLE_EQUALS, Operator.NOT_EQUALS):
            if len(values) != 1:
                errs.append(FieldError.invalid(values_path, list(values), "exact-match compatibility requires one single value"))
        elif op in (Operator.EXISTS, Operator.DOES_NOT_EXIST):
            if values:
                errs.append(FieldError.invalid(values_path, list(values), "values set must be empty for exists and does not exist"))
        elif op in (Operator.GREATER_THAN, Operator.LESS_THAN):
            if len(values) != 1:
                errs.append(FieldError.invalid(values_path, list(values), "for 'Gt', 'Lt' operators, exactly one value is required"))
            for i, v in enumerate(values):
                if _parse_int64(v) is None:
                    errs.append(FieldError.invalid(f"{values_path}[{i}]", v, "for 'Gt', 'Lt' operators, the value must be an integer"))
        else:
            errs.append(FieldError.not_supported(f"{path}.operator" if path else "operator", str(operator), [o.value for o in _VALID_OPERATORS]))
        for i, v in enumerate(values):
            msgs = is_valid_label_value(v)
            if msgs:
                errs.append(FieldError.invalid(f"{values_path}[{i}][{key}]", v, "; ".join(msgs)))
        if errs:
            raise _SelectorError(aggregate_messages(str(e) for e in errs))
        assert op is not None
        return cls(key, op, values)

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.operator
        has = self.key in labels
        if op in (Operator.IN, Operator.EQUALS, Operator.DOUBLE_EQUALS):
            return has and labels[self.key] in self.values
        if op in (Operator.NOT_IN, Operator.NOT_EQUALS):
            return not has or labels[self.key] not in self.values
        if op is Operator.EXISTS:
            return has
        if op is Operator.DOES_NOT_EXIST:
            return not has
        if op in (Operator.GREATER_THAN, Operator.LESS_THAN):
            if not has or len(self.values) != 1:
                return False
            actual = _parse_int64(labels[self.key])
            wanted = _parse_int64(self.values[0])
            if actual is None or wanted is None:
                return False
            return actual > wanted if op is Operator.GREATER_THAN else actual < wanted
        return False

    def to_string(self) -> str:
        op = self.operator
        if op is Operator.EXISTS:
            return self.key
        if op is Operator.DOES_NOT_EXIST:
            return "!" + self.key
        values = self.values[0] if len(self.values) == 1 else ",".join(sorted(self.values))
        if op in (Operator.IN, Operator.NOT_IN):
            return f"{self.key} {op.value} ({values})"
        symbol = {Operator.GREATER_THAN: ">", Operator.LESS_THAN: "<"}.get(op, op.value)
        return f"{self.key}{symbol}{values}"

    def __str__(self) -> str:
        return self.to_string()


# ---------------------------------------------------------------------------------------------
# Lexer and parser for the string form (labels.Parse)


class _Tok(StrEnum):
    ERROR = "error"
    END = "end"
    CLOSED_PAR = ")"
    COMMA = ","
    DOES_NOT_EXIST = "!"
    DOUBLE_EQUALS = "=="
    EQUALS = "="
    GREATER_THAN = ">"
    IDENTIFIER = "identifier"
    IN = "in"
    LESS_THAN = "<"
    NOT_EQUALS = "!="
    NOT_IN = "notin"
    OPEN_PAR = "("


_STRING_TO_TOKEN: Final[Mapping[str, _Tok]] = MappingProxyType({
    ")": _Tok.CLOSED_PAR,
    ",": _Tok.COMMA,
    "!": _Tok.DOES_NOT_EXIST,
    "==": _Tok.DOUBLE_EQUALS,
    "=": _Tok.EQUALS,
    ">": _Tok.GREATER_THAN,
    "in": _Tok.IN,
    "<": _Tok.LESS_THAN,
    "!=": _Tok.NOT_EQUALS,
    "notin": _Tok.NOT_IN,
    "(": _Tok.OPEN_PAR,
})
_WHITESPACE: Final = frozenset(" \t\r\n")
_SPECIAL: Final = frozenset("=!(),><")


def _lex(text: str) -> list[tuple[_Tok, str]]:
    items: list[tuple[_Tok, str]] = []
    pos, end = 0, len(text)
    while True:
        while pos < end and text[pos] in _WHITESPACE:
            pos += 1
        if pos >= end:
            items.append((_Tok.END, ""))
            return items
        if text[pos] in _SPECIAL:
            # Longest run of special characters that still forms a known operator.
            buf, last = "", None
            while pos < end and text[pos] in _SPECIAL:
                candidate = buf + text[pos]
                if candidate in _STRING_TO_TOKEN:
                    buf, last = candidate, (_STRING_TO_TOKEN[candidate], candidate)
                elif last is not None:
                    break
                else:
                    buf = candidate
                pos += 1
            items.append(last if last is not None else (_Tok.ERROR, f"error expected: keyword found '{buf}'"))
            continue
        start = pos
        while pos < end and text[pos] not in _SPECIAL and text[pos] not in _WHITESPACE:
            pos += 1
        word = text[start:pos]
        items.append((_STRING_TO_TOKEN.get(word, _Tok.IDENTIFIER), word))


class _Parser:
    """Recursive descent over the token list; "values" context treats in/notin as identifiers."""

    def __init__(self, text: str) -> None:
        self.items = _lex(text)
        self.pos = 0

    def _tok(self, index: int, values: bool) -> tuple[_Tok, str]:
        tok, lit = self.items[index]
        if values and tok in (_Tok.IN, _Tok.NOT_IN):
            tok = _Tok.IDENTIFIER
        return tok, lit

    def lookahead(self, values: bool = True) -> tuple[_Tok, str]:
        return self._tok(self.pos, values)

    def consume(self, values: bool = True) -> tuple[_Tok, str]:
        self.pos += 1
        return self._tok(self.pos - 1, values)

    def parse(self) -> list[Requirement]:
        reqs: list[Requirement] = []
        while True:
            tok, lit = self.lookahead()
            if tok in (_Tok.IDENTIFIER, _Tok.DOES_NOT_EXIST):
                try:
                    reqs.append(self.parse_requirement())
                except _SelectorError as exc:
                    raise _SelectorError(f"unable to parse requirement: {exc}") from None
                t, lit = self.consume()
                if t is _Tok.END:
                    return reqs
                if t is _Tok.COMMA:
                    t2, lit2 = self.lookahead()
                    if t2 not in (_Tok.IDENTIFIER, _Tok.DOES_NOT_EXIST):
                        raise _SelectorError(f"found '{lit2}', expected: identifier after ','")
                    continue
                raise _SelectorError(f"found '{lit}', expected: ',' or 'end of string'")
            if tok is _Tok.END:
                return reqs
            raise _SelectorError(f"found '{lit}', expected: !, identifier, or 'end of string'")

    def parse_requirement(self) -> Requirement:
        key, op = self.parse_key_and_infer_operator()
        if op in (Operator.EXISTS, Operator.DOES_NOT_EXIST):
            return Requirement._new(key, op, ())
        op = self.parse_operator()
        if op in (Operator.IN, Operator.NOT_IN):
            values = self.parse_values()
        else:
            values = self.parse_exact_value()
        return Requirement._new(key, op, tuple(sorted(values)))

    def parse_key_and_infer_operator(self) -> tuple[str, Operator | None]:
        op: Operator | None = None
        tok, lit = self.consume()
        if tok is _Tok.DOES_NOT_EXIST:
            op = Operator.DOES_NOT_EXIST
            tok, lit = self.consume()
        if tok is not _Tok.IDENTIFIER:
            raise _SelectorError(f"found '{lit}', expected: identifier")
        # The parser has no field path, which Go prints as "<nil>".
        err = _label_key_error(lit, "<nil>")
        if err:
            raise _SelectorError(str(err))
        if self.lookahead()[0] in (_Tok.END, _Tok.COMMA) and op is None:
            op = Operator.EXISTS
        return lit, op

    def parse_operator(self) -> Operator:
        tok, lit = self.consume(values=False)
        mapping = {
            _Tok.IN: Operator.IN,
            _Tok.EQUALS: Operator.EQUALS,
            _Tok.DOUBLE_EQUALS: Operator.DOUBLE_EQUALS,
            _Tok.GREATER_THAN: Operator.GREATER_THAN,
            _Tok.LESS_THAN: Operator.LESS_THAN,
            _Tok.NOT_IN: Operator.NOT_IN,
            _Tok.NOT_EQUALS: Operator.NOT_EQUALS,
        }
        if tok not in mapping:
            expected = ", ".join(o.value for o in _BINARY_OPERATORS)
            raise _SelectorError(f"found '{lit}', expected: {expected}")
        return mapping[tok]

    def parse_values(self) -> set[str]:
        tok, lit = self.consume()
        if tok is not _Tok.OPEN_PAR:
            raise _SelectorError(f"found '{lit}' expected: '('")
        tok, lit = self.lookahead()
        if tok in (_Tok.IDENTIFIER, _Tok.COMMA):
            values = self.parse_identifiers_list()
            if self.consume()[0] is not _Tok.CLOSED_PAR:
                raise _SelectorError(f"found '{lit}', expected: ')'")
            return values
        if tok is _Tok.CLOSED_PAR:  # "()" means the single empty value
            self.consume()
            return {""}
        raise _SelectorError(f"found '{lit}', expected: ',', ')' or identifier")

    def parse_identifiers_list(self) -> set[str]:
        values: set[str] = set()
        while True:
            tok, lit = self.consume()
            if tok is _Tok.IDENTIFIER:
                values.add(lit)
                tok2, lit2 = self.lookahead()
                if tok2 is _Tok.COMMA:
                    continue
                if tok2 is _Tok.CLOSED_PAR:
                    return values
                raise _SelectorError(f"found '{lit2}', expected: ',' or ')'")
            if tok is _Tok.COMMA:  # empty values: "(,a)", "(a,)", "(a,,b)"
                if not values:
                    values.add("")
                tok2, _ = self.lookahead()
                if tok2 is _Tok.CLOSED_PAR:
                    values.add("")
                    return values
                if tok2 is _Tok.COMMA:
                    self.consume()
                    values.add("")
                continue
            raise _SelectorError(f"found '{lit}', expected: ',', or identifier")

    def parse_exact_value(self) -> set[str]:
        tok, _ = self.lookahead()
        if tok in (_Tok.END, _Tok.COMMA):
            return {""}
        tok, lit = self.consume()
        if tok is _Tok.IDENTIFIER:
            return {lit}
        raise _SelectorError(f"found '{lit}', expected: identifier")


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """A conjunction of requirements. ``LabelSelector()`` matches everything; ``nothing()`` matches nothing."""

    requirements: tuple[Requirement, ...] = ()
    match_nothing: bool = False

    @classmethod
    def everything(cls) -> LabelSelector:
        return cls()

    @classmethod
    def nothing(cls) -> LabelSelector:
        return cls(match_nothing=True)

    @classmethod
    def parse(cls, text: str) -> LabelSelector:
        """Parse ``?labelSelector=`` text (already URL-decoded). Raises 400 with upstream's message."""
        try:
            reqs = _Parser(text).parse()
        except _SelectorError as exc:
            raise bad_request(str(exc)) from None
        return cls(tuple(sorted(reqs, key=lambda r: r.key)))

    @classmethod
    def from_set(cls, labels: Mapping[str, str]) -> LabelSelector:
        """Equality on every pair (``SelectorFromSet``); no validation, like upstream."""
        reqs = (Requirement(k, Operator.EQUALS, (v,)) for k, v in labels.items())
        return cls(tuple(sorted(reqs, key=lambda r: r.key)))

    @classmethod
    def from_structured(cls, selector: Mapping[str, Any] | None) -> LabelSelector:
        """``metav1.LabelSelectorAsSelector``: ``None`` selects nothing, ``{}`` everything.

        ``matchLabels`` become ``=`` requirements; ``matchExpressions`` use the operators
        ``In``, ``NotIn``, ``Exists`` and ``DoesNotExist``. Raises 400 on bad content.
        """
        if selector is None:
            return cls.nothing()
        match_labels = _or_default(selector.get("matchLabels"), {})
        expressions = _or_default(selector.get("matchExpressions"), [])
        if not isinstance(match_labels, Mapping) or not isinstance(expressions, list):
            raise bad_request("invalid label selector: matchLabels must be an object and matchExpressions a list")
        if not match_labels and not expressions:
            return cls.everything()
        ops = {
            "In": Operator.IN,
            "NotIn": Operator.NOT_IN,
            "Exists": Operator.EXISTS,
            "DoesNotExist": Operator.DOES_NOT_EXIST,
        }
        reqs: list[Requirement] = []
        try:
            for k, v in match_labels.items():
                reqs.append(Requirement._new(str(k), Operator.EQUALS, (str(v),)))
            for expr in expressions:
                if not isinstance(expr, Mapping):
                    raise _SelectorError("invalid label selector: matchExpressions entries must be objects")
                op_name = expr.get("operator")
                op = ops.get(op_name) if isinstance(op_name, str) else None
                if op is None:
                    raise _SelectorError(f"{_go_q(op_name)} is not a valid label selector operator")
                values = expr.get("values") or []
                reqs.append(Requirement._new(str(expr.get("key", "")), op, tuple(str(v) for v in values)))
        except _SelectorError as exc:
            raise bad_request(str(exc)) from None
        return cls(tuple(sorted(reqs, key=lambda r: r.key)))

    @property
    def empty(self) -> bool:
        """True when the selector does not restrict anything (matches everything)."""
        return not self.match_nothing and not self.requirements

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.match_nothing:
            return False
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    def requires_exact_match(self, key: str) -> str | None:
        """The single value ``key`` must have (``=``, ``==`` or one-value ``in``), if any."""
        for r in self.requirements:
            if r.key == key and len(r.values) == 1 and r.operator in (
                Operator.EQUALS,
                Operator.DOUBLE_EQUALS,
                Operator.IN,
            ):
                return r.values[0]
        return None

    def add(self, *requirements: Requirement) -> LabelSelector:
        reqs = self.requirements + requirements
        return LabelSelector(tuple(sorted(reqs, key=lambda r: r.key)), self.match_nothing)

    def to_string(self) -> str:
        if self.match_nothing:
            return ""
        return ",".join(r.to_string() for r in self.requirements)

    def __str__(self) -> str:
        return self.to_string()


def _or_default(value: Any, default: Any) -> Any:
    return default if value is None else value


def _go_q(value: Any) -> str:
    return go_quote("" if value is None else str(value))


def validate_label_selector(
    selector: Mapping[str, Any] | None, path: Path | str = Path.of("spec", "selector")
) -> list[FieldError]:
    """Field errors for a structured selector in a spec (``ValidateLabelSelector``), for a 422."""
    errs: list[FieldError] = []
    if selector is None:
        return errs
    base = path if isinstance(path, Path) else Path.of(*str(path).split("."))
    match_labels = _or_default(selector.get("matchLabels"), {})
    if isinstance(match_labels, Mapping):
        errs.extend(validate_labels(match_labels, base.child("matchLabels")))
    else:
        errs.append(FieldError.type_invalid(base.child("matchLabels"), match_labels, "must be an object"))
    expressions = _or_default(selector.get("matchExpressions"), [])
    if not isinstance(expressions, list):
        return errs + [FieldError.type_invalid(base.child("matchExpressions"), expressions, "must be a list")]
    for i, expr in enumerate(expressions):
        p = base.child("matchExpressions").index(i)
        if not isinstance(expr, Mapping):
            errs.append(FieldError.type_invalid(p, expr, "must be an object"))
            continue
        op = expr.get("operator")
        values = expr.get("values") or []
        if op in ("In", "NotIn"):
            if not values:
                errs.append(FieldError.required(p.child("values"), "must be specified when `operator` is 'In' or 'NotIn'"))
        elif op in ("Exists", "DoesNotExist"):
            if values:
                errs.append(FieldError.forbidden(p.child("values"), "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
        else:
            errs.append(FieldError.invalid(p.child("operator"), op, "not a valid selector operator"))
        key = expr.get("key")
        key = key if isinstance(key, str) else ""
        errs.extend(FieldError.invalid(p.child("key"), key, m) for m in is_qualified_name(key))
        for j, v in enumerate(values if isinstance(values, list) else []):
            v = v if isinstance(v, str) else str(v)
            errs.extend(FieldError.invalid(p.child("values").index(j), v, m) for m in is_valid_label_value(v))
    return errs


# ---------------------------------------------------------------------------------------------
# Field selectors (fields.ParseSelector)


def escape_field_value(value: str) -> str:
    """Escape ``\\``, ``,`` and ``=`` so the value survives inside a field selector."""
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def unescape_field_value(value: str) -> str:
    """Inverse of ``escape_field_value``; raises 400 on a bad escape or a bare ``,``/``=``."""
    if not any(c in value for c in "\\,="):
        return value
    out: list[str] = []
    in_slash = False
    for ch in value:
        if in_slash:
            if ch not in "\\,=":
                raise bad_request(f"invalid field selector: invalid escape sequence: \\{ch}")
            out.append(ch)
            in_slash = False
        elif ch == "\\":
            in_slash = True
        elif ch in ",=":
            # Go formats the rune with %v, which prints its code point.
            raise bad_request(f"invalid field selector: unescaped character in value: {ord(ch)}")
        else:
            out.append(ch)
    if in_slash:
        raise bad_request("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def _split_terms(text: str) -> list[str]:
    if not text:
        return []
    terms: list[str] = []
    start = 0
    in_slash = False
    for i, ch in enumerate(text):
        if in_slash:
            in_slash = False
        elif ch == "\\":
            in_slash = True
        elif ch == ",":
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


_FIELD_OPERATORS: Final = ("!=", "==", "=")


@dataclass(frozen=True, slots=True)
class FieldRequirement:
    """``field = value`` or ``field != value`` (``==`` is normalised to ``=``)."""

    field: str
    value: str
    negated: bool = False

    def matches(self, get_field: Callable[[str], str | None]) -> bool:
        # A missing field reads as "" (upstream Fields.Get), so "x!=" excludes objects lacking x.
        actual = get_field(self.field)
        actual = "" if actual is None else actual
        return (actual != self.value) if self.negated else (actual == self.value)

    def to_string(self) -> str:
        return f"{self.field}{'!=' if self.negated else '='}{escape_field_value(self.value)}"


@dataclass(frozen=True, slots=True)
class FieldSelector:
    """A conjunction of ``FieldRequirement``; ``FieldSelector()`` matches everything."""

    requirements: tuple[FieldRequirement, ...] = ()

    @classmethod
    def parse(cls, text: str) -> FieldSelector:
        """Parse ``?fieldSelector=`` text. Raises 400 with upstream's message on garbage."""
        reqs: list[FieldRequirement] = []
        for part in sorted(_split_terms(text)):
            if not part:
                continue
            for i in range(len(part)):
                op = next((o for o in _FIELD_OPERATORS if part.startswith(o, i)), None)
                if op is not None:
                    lhs, rhs = part[:i], part[i + len(op):]
                    break
            else:
                raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
            value = unescape_field_value(rhs)
            if not lhs and not value:
                continue  # upstream's Transform drops a requirement with empty field and value
            reqs.append(FieldRequirement(lhs, value, negated=(op == "!=")))
        return cls(tuple(reqs))

    @classmethod
    def from_set(cls, fields: Mapping[str, str]) -> FieldSelector:
        return cls(tuple(FieldRequirement(k, v) for k, v in sorted(fields.items())))

    @property
    def empty(self) -> bool:
        return not self.requirements

    @property
    def fields(self) -> frozenset[str]:
        return frozenset(r.field for r in self.requirements)

    def check_fields(self, supported: Collection[str]) -> None:
        """Raise 400 ``field label not supported: x`` for a field the resource cannot select on."""
        for r in self.requirements:
            if r.field not in supported:
                raise bad_request(f"field label not supported: {r.field}")

    def matches(self, get_field: Callable[[str], str | None]) -> bool:
        return all(r.matches(get_field) for r in self.requirements)

    def matches_fields(self, fields: Mapping[str, str]) -> bool:
        return self.matches(fields.get)

    def requires_exact_match(self, field: str) -> str | None:
        for r in self.requirements:
            if r.field == field and not r.negated:
                return r.value
        return None

    def to_string(self) -> str:
        return ",".join(r.to_string() for r in self.requirements)

    def __str__(self) -> str:
        return self.to_string()


def field_getter(obj: Mapping[str, Any]) -> Callable[[str], str | None]:
    """A ``get_field`` for ``FieldSelector.matches`` that reads dotted paths of a plain object.

    Scalars are rendered as the apiserver's field sets do: booleans ``true``/``false``,
    numbers in decimal; maps, lists and absent fields read as ``None``.
    """

    def get(path: str) -> str | None:
        node: Any = obj
        for part in path.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return None
            node = node[part]
        if isinstance(node, bool):
            return "true" if node else "false"
        if isinstance(node, (str, int, float)):
            return str(node)
        return None

    return get
