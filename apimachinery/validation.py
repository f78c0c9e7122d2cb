"""Name, label and annotation validation with Kubernetes' exact wording, and field errors.

The ``is_*`` checks return a list of message strings (empty = valid), like
``k8s.io/apimachinery/pkg/util/validation``; callers wrap each message in a ``FieldError``
(``invalid(path, value, msg)``), and ``errors.invalid`` turns a list of those into the 422 Status.
Messages follow Kubernetes 1.32, the version Pilothouse reports, so kubectl prints familiar text.

Lengths are counted in UTF-8 bytes because Go's ``len(string)`` does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final

from .errors import StatusCause
from .gofmt import go_quote, go_value

__all__ = [
    "DNS1123_LABEL_MAX_LENGTH",
    "DNS1123_SUBDOMAIN_MAX_LENGTH",
    "DNS1035_LABEL_MAX_LENGTH",
    "LABEL_VALUE_MAX_LENGTH",
    "QUALIFIED_NAME_MAX_LENGTH",
    "TOTAL_ANNOTATION_SIZE_LIMIT_B",
    "max_len_error",
    "regex_error",
    "empty_error",
    "inclusive_range_error",
    "is_dns1123_label",
    "is_dns1123_subdomain",
    "is_dns1035_label",
    "is_qualified_name",
    "is_label_key",
    "is_valid_label_value",
    "is_valid_port_num",
    "is_valid_port_name",
    "is_config_map_key",
    "is_env_var_name",
    "is_valid_path_segment_name",
    "mask_trailing_dash",
    "name_is_dns_subdomain",
    "name_is_dns_label",
    "name_is_dns1035_label",
    "ErrorType",
    "FieldError",
    "Path",
    "OMIT_VALUE",
    "validate_labels",
    "validate_label_name",
    "validate_annotations",
    "annotations_size",
    "validate_finalizers",
    "validate_owner_references",
    "validate_object_meta",
    "validate_nonnegative",
]

DNS1123_LABEL_MAX_LENGTH: Final = 63
DNS1123_SUBDOMAIN_MAX_LENGTH: Final = 253
DNS1035_LABEL_MAX_LENGTH: Final = 63
LABEL_VALUE_MAX_LENGTH: Final = 63
QUALIFIED_NAME_MAX_LENGTH: Final = 63
TOTAL_ANNOTATION_SIZE_LIMIT_B: Final = 256 * 1024

_DNS1123_LABEL_FMT: Final = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL_ERR: Final = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)
_DNS1123_SUBDOMAIN_FMT: Final = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_DNS1123_SUBDOMAIN_ERR: Final = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character"
)
_DNS1035_LABEL_FMT: Final = "[a-z]([-a-z0-9]*[a-z0-9])?"
_DNS1035_LABEL_ERR: Final = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character"
)
_QNAME_FMT: Final = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QNAME_ERR: Final = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character"
)
_LABEL_VALUE_FMT: Final = "(" + _QNAME_FMT + ")?"
_LABEL_VALUE_ERR: Final = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)
_CONFIG_MAP_KEY_FMT: Final = "[-._a-zA-Z0-9]+"
_CONFIG_MAP_KEY_ERR: Final = "a valid config key must consist of alphanumeric characters, '-', '_' or '.'"
_ENV_VAR_NAME_FMT: Final = "[-._a-zA-Z][-._a-zA-Z0-9]*"
_ENV_VAR_NAME_ERR: Final = (
    "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', "
    "or '.', and must not start with a digit"
)

# re.fullmatch, not "^...$": Python's "$" also matches before a trailing newline.
_DNS1123_LABEL_RE: Final = re.compile(_DNS1123_LABEL_FMT)
_DNS1123_SUBDOMAIN_RE: Final = re.compile(_DNS1123_SUBDOMAIN_FMT)
_DNS1035_LABEL_RE: Final = re.compile(_DNS1035_LABEL_FMT)
_QNAME_RE: Final = re.compile(_QNAME_FMT)
_LABEL_VALUE_RE: Final = re.compile(_LABEL_VALUE_FMT)
_CONFIG_MAP_KEY_RE: Final = re.compile(_CONFIG_MAP_KEY_FMT)
_ENV_VAR_NAME_RE: Final = re.compile(_ENV_VAR_NAME_FMT)
_PORT_NAME_CHARSET_RE: Final = re.compile("[-a-z0-9]+")
_PORT_NAME_ONE_LETTER_RE: Final = re.compile("[a-z]")


def _blen(value: str) -> int:
    return len(value.encode("utf-8", "surrogatepass"))


def max_len_error(length: int) -> str:
    return f"must be no more than {length} characters"


def regex_error(msg: str, fmt: str, *examples: str) -> str:
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    shown = " or ".join(f"'{e}', " for e in examples)
    return f"{msg} (e.g. {shown}regex used for validation is '{fmt}')"


def empty_error() -> str:
    return "must be non-empty"


def inclusive_range_error(lo: int, hi: int) -> str:
    return f"must be between {lo} and {hi}, inclusive"


def is_dns1123_label(value: str) -> list[str]:
    """RFC 1123 label (namespace names, most ``name``-like fields): ≤63, ``[a-z0-9-]``."""
    errs: list[str] = []
    if _blen(value) > DNS1123_LABEL_MAX_LENGTH:
        errs.append(max_len_error(DNS1123_LABEL_MAX_LENGTH))
    if not _DNS1123_LABEL_RE.fullmatch(value):
        if _DNS1123_SUBDOMAIN_RE.fullmatch(value):
            # A valid subdomain that is not a valid label can only be failing on its dots.
            errs.append("must not contain dots")
        else:
            errs.append(regex_error(_DNS1123_LABEL_ERR, _DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errs


def is_dns1123_subdomain(value: str) -> list[str]:
    """RFC 1123 subdomain (object names of most kinds): ≤253, dot-separated labels."""
    errs: list[str] = []
    if _blen(value) > DNS1123_SUBDOMAIN_MAX_LENGTH:
        errs.append(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH))
    if not _DNS1123_SUBDOMAIN_RE.fullmatch(value):
        errs.append(regex_error(_DNS1123_SUBDOMAIN_ERR, _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def is_dns1035_label(value: str) -> list[str]:
    """RFC 1035 label (Service names): ≤63, must start with a letter."""
    errs: list[str] = []
    if _blen(value) > DNS1035_LABEL_MAX_LENGTH:
        errs.append(max_len_error(DNS1035_LABEL_MAX_LENGTH))
    if not _DNS1035_LABEL_RE.fullmatch(value):
        errs.append(regex_error(_DNS1035_LABEL_ERR, _DNS1035_LABEL_FMT, "my-name", "abc-123"))
    return errs


def is_qualified_name(value: str) -> list[str]:
    """Qualified name = label key: ``[prefix/]name``, prefix a DNS subdomain, name ≤63."""
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part " + empty_error())
        else:
            errs.extend("prefix part " + m for m in is_dns1123_subdomain(prefix))
    else:
        return [
            "a qualified name "
            + regex_error(_QNAME_ERR, _QNAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part " + empty_error())
    elif _blen(name) > QUALIFIED_NAME_MAX_LENGTH:
        errs.append("name part " + max_len_error(QUALIFIED_NAME_MAX_LENGTH))
    if not _QNAME_RE.fullmatch(name):
        errs.append("name part " + regex_error(_QNAME_ERR, _QNAME_FMT, "MyName", "my.name", "123-abc"))
    return errs


is_label_key = is_qualified_name


def is_valid_label_value(value: str) -> list[str]:
    """Label value: empty, or ≤63 alphanumerics with ``-_.`` inside."""
    errs: list[str] = []
    if _blen(value) > LABEL_VALUE_MAX_LENGTH:
        errs.append(max_len_error(LABEL_VALUE_MAX_LENGTH))
    if not _LABEL_VALUE_RE.fullmatch(value):
        errs.append(regex_error(_LABEL_VALUE_ERR, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errs


def is_valid_port_num(port: int) -> list[str]:
    return [] if 1 <= port <= 65535 else [inclusive_range_error(1, 65535)]


def is_valid_port_name(port: str) -> list[str]:
    """IANA_SVC_NAME: ≤15 chars of ``[-a-z0-9]``, at least one letter, no ``--``, no edge hyphen."""
    errs: list[str] = []
    if _blen(port) > 15:
        errs.append(max_len_error(15))
    if not _PORT_NAME_CHARSET_RE.fullmatch(port):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not _PORT_NAME_ONE_LETTER_RE.search(port):
        errs.append("must contain at least one letter (a-z)")
    if "--" in port:
        errs.append("must not contain consecutive hyphens")
    if port and (port[0] == "-" or port[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def _has_chdir_prefix(value: str) -> list[str]:
    if value == ".":
        return ["must not be '.'"]
    if value == "..":
        return ["must not be '..'"]
    if value.startswith(".."):
        return ["must not start with '..'"]
    return []


def is_config_map_key(value: str) -> list[str]:
    """Key of a ConfigMap/Secret ``data`` entry (it becomes a file name when mounted)."""
    errs: list[str] = []
    if _blen(value) > DNS1123_SUBDOMAIN_MAX_LENGTH:
        errs.append(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH))
    if not _CONFIG_MAP_KEY_RE.fullmatch(value):
        errs.append(
            regex_error(_CONFIG_MAP_KEY_ERR, _CONFIG_MAP_KEY_FMT, "key.name", "KEY_NAME", "key-name")
        )
    errs.extend(_has_chdir_prefix(value))
    return errs


def is_env_var_name(value: str) -> list[str]:
    errs: list[str] = []
    if not _ENV_VAR_NAME_RE.fullmatch(value):
        errs.append(
            regex_error(
                _ENV_VAR_NAME_ERR, _ENV_VAR_NAME_FMT, "my.env-name", "MY_ENV.NAME", "MyEnvName1"
            )
        )
    errs.extend(_has_chdir_prefix(value))
    return errs


def is_valid_path_segment_name(name: str, prefix: bool = False) -> list[str]:
    """Every object name ends up in a URL path: no ``.``/``..``, no ``/`` or ``%``."""
    if not prefix:
        for illegal in (".", ".."):
            if name == illegal:
                return [f"may not be '{illegal}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in name]


def mask_trailing_dash(name: str) -> str:
    """A ``generateName`` prefix may end in ``-``; upstream swaps the last two chars for ``a``."""
    if len(name) > 1 and name.endswith("-"):
        return name[:-2] + "a"
    return name


def name_is_dns_subdomain(name: str, prefix: bool = False) -> list[str]:
    return is_dns1123_subdomain(mask_trailing_dash(name) if prefix else name)


def name_is_dns_label(name: str, prefix: bool = False) -> list[str]:
    return is_dns1123_label(mask_trailing_dash(name) if prefix else name)


def name_is_dns1035_label(name: str, prefix: bool = False) -> list[str]:
    return is_dns1035_label(mask_trailing_dash(name) if prefix else name)


# ---------------------------------------------------------------------------------------------
# Field errors


class ErrorType(StrEnum):
    """``field.ErrorType``; the value is the ``reason`` of the Status cause."""

    NOT_FOUND = "FieldValueNotFound"
    REQUIRED = "FieldValueRequired"
    DUPLICATE = "FieldValueDuplicate"
    INVALID = "FieldValueInvalid"
    NOT_SUPPORTED = "FieldValueNotSupported"
    FORBIDDEN = "FieldValueForbidden"
    TOO_LONG = "FieldValueTooLong"
    TOO_MANY = "FieldValueTooMany"
    INTERNAL = "InternalError"
    TYPE_INVALID = "FieldValueTypeInvalid"

    @property
    def label(self) -> str:
        """The human text (``ErrorType.String()`` in Go)."""
        return _ERROR_TYPE_LABELS[self]


_ERROR_TYPE_LABELS: Final[Mapping[ErrorType, str]] = MappingProxyType({
    ErrorType.NOT_FOUND: "Not found",
    ErrorType.REQUIRED: "Required value",
    ErrorType.DUPLICATE: "Duplicate value",
    ErrorType.INVALID: "Invalid value",
    ErrorType.NOT_SUPPORTED: "Unsupported value",
    ErrorType.FORBIDDEN: "Forbidden",
    ErrorType.TOO_LONG: "Too long",
    ErrorType.TOO_MANY: "Too many",
    ErrorType.INTERNAL: "Internal error",
    ErrorType.TYPE_INVALID: "Invalid value",
})

# These types never show the bad value, only the type's text and the detail.
_VALUELESS: Final = frozenset(
    {ErrorType.REQUIRED, ErrorType.FORBIDDEN, ErrorType.TOO_LONG, ErrorType.INTERNAL}
)


class _OmitValue:
    __slots__ = ()

    def __repr__(self) -> str:
        return "OMIT_VALUE"


OMIT_VALUE: Final = _OmitValue()
"""Pass as ``bad_value`` to leave the value out of the message."""


@dataclass(frozen=True, slots=True)
class FieldError:
    """``field.Error``: what is wrong (``type``) with which field (``field``, e.g. ``spec.replicas``).

    ``str(err)`` is ``"<field>: <body>"`` and ``error_body()`` the part after the field, e.g.
    ``Invalid value: "X_Y": a lowercase RFC 1123 subdomain ...``. Build them with the class
    methods, which set the details the way the Go constructors do.
    """

    type: ErrorType
    field: str
    bad_value: Any = ""
    detail: str = ""

    def error_body(self) -> str:
        if self.type in _VALUELESS or self.bad_value is OMIT_VALUE:
            body = self.type.label
        else:
            body = f"{self.type.label}: {go_value(self.bad_value)}"
        if self.detail:
            body += f": {self.detail}"
        return body

    def __str__(self) -> str:
        return f"{self.field}: {self.error_body()}"

    def to_cause(self) -> StatusCause:
        return StatusCause(type=self.type.value, message=self.error_body(), field=self.field)

    @classmethod
    def required(cls, field: object, detail: str = "") -> FieldError:
        return cls(ErrorType.REQUIRED, str(field), "", detail)

    @classmethod
    def invalid(cls, field: object, value: Any, detail: str = "") -> FieldError:
        return cls(ErrorType.INVALID, str(field), value, detail)

    @classmethod
    def forbidden(cls, field: object, detail: str) -> FieldError:
        return cls(ErrorType.FORBIDDEN, str(field), "", detail)

    @classmethod
    def duplicate(cls, field: object, value: Any) -> FieldError:
        return cls(ErrorType.DUPLICATE, str(field), value)

    @classmethod
    def not_found(cls, field: object, value: Any) -> FieldError:
        return cls(ErrorType.NOT_FOUND, str(field), value)

    @classmethod
    def not_supported(cls, field: object, value: Any, valid_values: Sequence[str] = ()) -> FieldError:
        detail = ""
        if valid_values:
            detail = "supported values: " + ", ".join(go_quote(v) for v in valid_values)
        return cls(ErrorType.NOT_SUPPORTED, str(field), value, detail)

    @classmethod
    def too_long(cls, field: object, max_length: int) -> FieldError:
        detail = f"may not be more than {max_length} bytes" if max_length >= 0 else "value is too long"
        return cls(ErrorType.TOO_LONG, str(field), "<value omitted>", detail)

    @classmethod
    def too_many(cls, field: object, actual: int, max_quantity: int) -> FieldError:
        detail = f"must have at most {max_quantity} items" if max_quantity >= 0 else "has too many items"
        return cls(ErrorType.TOO_MANY, str(field), actual if actual >= 0 else OMIT_VALUE, detail)

    @classmethod
    def internal(cls, field: object, detail: str) -> FieldError:
        return cls(ErrorType.INTERNAL, str(field), None, detail)

    @classmethod
    def type_invalid(cls, field: object, value: Any, detail: str) -> FieldError:
        return cls(ErrorType.TYPE_INVALID, str(field), value, detail)


@dataclass(frozen=True, slots=True)
class Path:
    """``field.Path``: ``Path("spec").child("containers").index(0).child("name")`` → ``spec.containers[0].name``."""

    _parts: tuple[str, ...] = ()

    @classmethod
    def of(cls, *names: str) -> Path:
        return cls(tuple("." + n for n in names))

    def child(self, *names: str) -> Path:
        return Path(self._parts + tuple("." + n for n in names))

    def index(self, i: int) -> Path:
        return Path(self._parts + (f"[{i}]",))

    def key(self, k: str) -> Path:
        return Path(self._parts + (f"[{k}]",))

    def __str__(self) -> str:
        text = "".join(self._parts)
        return text[1:] if text.startswith(".") else text


# ---------------------------------------------------------------------------------------------
# ObjectMeta validation (k8s.io/apimachinery/pkg/api/validation)


def validate_label_name(name: str, path: object) -> list[FieldError]:
    return [FieldError.invalid(path, name, m) for m in is_qualified_name(name)]


def validate_labels(labels: Mapping[str, Any], path: object = "metadata.labels") -> list[FieldError]:
    """Every key a qualified name, every value a label value (and a string)."""
    errs: list[FieldError] = []
    for k, v in labels.items():
        errs.extend(validate_label_name(k, path))
        if not isinstance(v, str):
            errs.append(FieldError.type_invalid(f"{path}[{k}]", v, "must be a string"))
            continue
        errs.extend(FieldError.invalid(path, v, m) for m in is_valid_label_value(v))
    return errs


def annotations_size(annotations: Mapping[str, str]) -> int:
    return sum(_blen(k) + _blen(v) for k, v in annotations.items() if isinstance(v, str))


def validate_annotations(
    annotations: Mapping[str, Any], path: object = "metadata.annotations"
) -> list[FieldError]:
    """Keys are qualified names (case-insensitive); keys + values total at most 256 KiB."""
    errs: list[FieldError] = []
    for k, v in annotations.items():
        errs.extend(FieldError.invalid(path, k, m) for m in is_qualified_name(k.lower()))
        if not isinstance(v, str):
            errs.append(FieldError.type_invalid(f"{path}[{k}]", v, "must be a string"))
    if annotations_size(annotations) > TOTAL_ANNOTATION_SIZE_LIMIT_B:
        errs.append(FieldError.too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT_B))
    return errs


_FINALIZER_ORPHAN: Final = "orphan"
_FINALIZER_FOREGROUND: Final = "foregroundDeletion"


def validate_finalizers(finalizers: Sequence[str], path: object = "metadata.finalizers") -> list[FieldError]:
    errs: list[FieldError] = []
    for f in finalizers:
        errs.extend(FieldError.invalid(path, f, m) for m in is_qualified_name(f))
    if _FINALIZER_ORPHAN in finalizers and _FINALIZER_FOREGROUND in finalizers:
        errs.append(
            FieldError.invalid(
                path,
                list(finalizers),
                f"finalizer {_FINALIZER_ORPHAN} and {_FINALIZER_FOREGROUND} cannot be both set",
            )
        )
    return errs


def validate_owner_references(
    refs: Sequence[Mapping[str, Any]], path: Path = Path.of("metadata", "ownerReferences")
) -> list[FieldError]:
    """Each reference names apiVersion (with a version), kind, name, uid; at most one controller."""
    errs: list[FieldError] = []
    first_controller = ""
    for ref in refs:
        api_version = str(ref.get("apiVersion") or "")
        version = api_version.rsplit("/", 1)[-1] if api_version else ""
        if not version:
            errs.append(FieldError.invalid(path.child("apiVersion"), api_version, "version must not be empty"))
        for key, label in (("kind", "kind"), ("name", "name"), ("uid", "uid")):
            value = str(ref.get(key) or "")
            if not value:
                errs.append(FieldError.invalid(path.child(key), value, f"{label} must not be empty"))
        if api_version == "v1" and ref.get("kind") == "Event":
            errs.append(FieldError.invalid(path, dict(ref), "/v1, Kind=Event is disallowed from being an owner"))
        if ref.get("controller") is True:
            current = f"{ref.get('kind', '')}/{ref.get('name', '')}"
            if first_controller:
                errs.append(
                    FieldError.invalid(
                        path,
                        [dict(r) for r in refs],
                        'Only one reference can have Controller set to true. Found "true" in '
                        f"references for {first_controller} and {current}",
                    )
                )
            else:
                first_controller = current
    return errs


def validate_nonnegative(value: int, path: object) -> list[FieldError]:
    return [FieldError.invalid(path, value, "must be greater than or equal to 0")] if value < 0 else []


NameValidator = Callable[[str, bool], list[str]]


def validate_object_meta(
    meta: Mapping[str, Any],
    *,
    namespaced: bool,
    name_fn: NameValidator = name_is_dns_subdomain,
    path: Path = Path.of("metadata"),
) -> list[FieldError]:
    """``ValidateObjectMetaAccessor``: name/generateName, namespace, labels, annotations, owners, finalizers."""
    errs: list[FieldError] = []
    generate_name = str(meta.get("generateName") or "")
    name = str(meta.get("name") or "")
    namespace = str(meta.get("namespace") or "")
    if generate_name:
        errs.extend(FieldError.invalid(path.child("generateName"), generate_name, m) for m in name_fn(generate_name, True))
    if not name:
        errs.append(FieldError.required(path.child("name"), "name or generateName is required"))
    else:
        errs.extend(FieldError.invalid(path.child("name"), name, m) for m in name_fn(name, False))
    if namespaced:
        if not namespace:
            errs.append(FieldError.required(path.child("namespace")))
        else:
            errs.extend(FieldError.invalid(path.child("namespace"), namespace, m) for m in name_is_dns_label(namespace))
    elif namespace:
        errs.append(FieldError.forbidden(path.child("namespace"), "not allowed on this type"))
    generation = meta.get("generation")
    if isinstance(generation, int) and not isinstance(generation, bool):
        errs.extend(validate_nonnegative(generation, path.child("generation")))
    errs.extend(_mapping_errors(meta, "labels", path, validate_labels))
    errs.extend(_mapping_errors(meta, "annotations", path, validate_annotations))
    refs = meta.get("ownerReferences")
    if isinstance(refs, list):
        errs.extend(validate_owner_references([r for r in refs if isinstance(r, Mapping)], path.child("ownerReferences")))
    finalizers = meta.get("finalizers")
    if isinstance(finalizers, list):
        errs.extend(validate_finalizers([f for f in finalizers if isinstance(f, str)], path.child("finalizers")))
    return errs


def _mapping_errors(
    meta: Mapping[str, Any],
    key: str,
    path: Path,
    fn: Callable[[Mapping[str, Any], object], list[FieldError]],
) -> Iterable[FieldError]:
    value = meta.get(key)
    if value is None:
        return []
    if not isinstance(value, Mapping):
        return [FieldError.type_invalid(path.child(key), value, "must be an object")]
    return fn(value, path.child(key))
