"""Values as Elasticsearch sees them: strict JSON parsing (duplicate keys and NaN are errors),
date formats, JSON value and field type families, error-message previews, generated ids, the
partial-document merge and boolean query parameters."""

import datetime
import json
import math
import secrets

from .common import (
    DATE_TYPES, DEFAULT_DATE_FORMAT, FLOAT_TYPES, ISO_DATE, LONG_RANGES, NUMBER_TEXT, OBJECT_TYPES, SLASH_DATE,
    SLASH_DATE_FORMAT, STRING_TYPES,
)


class JsonError(ValueError):
    def __init__(self, message, column=1):
        super().__init__(message)
        self.message = message
        self.column = column


def _no_duplicates(pairs):
    out = {}
    for key, value in pairs:
        if key in out:
            raise JsonError(f"Duplicate field '{key}'")
        out[key] = value
    return out


def _no_constants(name):
    raise JsonError(f"Non-standard token '{name}': enable ALLOW_NON_NUMERIC_NUMBERS to allow")


def parse_json(text):
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except json.JSONDecodeError as e:
        raise JsonError(e.msg, e.colno) from None
    except RecursionError:
        raise JsonError("the document is nested too deeply") from None


def parse_json_bytes(data):
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise JsonError(f"Invalid UTF-8 start byte 0x{data[e.start]:02x}", e.start + 1) from None
    return parse_json(text)


def valid_iso_date(text):
    m = ISO_DATE.match(text)
    if not m:
        return False
    year, month, day, hour, minute, second = (int(g) if g else None for g in m.groups())
    try:
        datetime.datetime(year, month or 1, day or 1, hour or 0, minute or 0, second or 0)
    except ValueError:
        return False
    return True


def valid_slash_date(text):
    m = SLASH_DATE.match(text)
    if not m:
        return False
    year, month, day, hour, minute, second = (int(g) if g else 0 for g in m.groups())
    try:
        datetime.datetime(year, month, day, hour, minute, second)
    except ValueError:
        return False
    return True


def date_matches(value, fmt):
    """True when `value` parses with one of the `||`-separated formats. Formats this server does
    not know are accepted without checking."""
    for part in fmt.split("||"):
        part = part.strip()
        if part in ("strict_date_optional_time", "date_optional_time", "strict_date_optional_time_nanos"):
            if isinstance(value, str) and valid_iso_date(value):
                return True
        elif part in ("yyyy/MM/dd HH:mm:ss", "yyyy/MM/dd"):
            if isinstance(value, str) and valid_slash_date(value):
                return True
        elif part in ("epoch_millis", "epoch_second"):
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return math.isfinite(value)
            if isinstance(value, str) and NUMBER_TEXT.match(value):
                return True
        else:
            return True
    return False


def detect_date(text):
    """Dynamic date detection: the format a new string field gets, or None. Like Elasticsearch,
    only strings with '-', ':' or '/' are candidates (so "2015" stays text)."""
    if not any(c in text for c in "-:/"):
        return None
    if valid_iso_date(text):
        return DEFAULT_DATE_FORMAT
    if valid_slash_date(text):
        return SLASH_DATE_FORMAT
    return None


def preview(value):
    """A value rendered as Elasticsearch's error messages show it (Java's toString)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={preview(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(preview(v) for v in value) + "]"
    return str(value)


def value_family(value):
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    return "null"


def type_family(type_name):
    if type_name in LONG_RANGES or type_name in FLOAT_TYPES:
        return "number"
    if type_name in STRING_TYPES:
        return "string"
    if type_name == "boolean":
        return "boolean"
    if type_name in DATE_TYPES:
        return "date"
    if type_name in OBJECT_TYPES:
        return "object"
    return "opaque"


def token_name(value):
    if isinstance(value, bool):
        return "VALUE_TRUE" if value else "VALUE_FALSE"
    if isinstance(value, int):
        return "VALUE_NUMBER_INT"
    if isinstance(value, float):
        return "VALUE_NUMBER_FLOAT"
    return "VALUE_STRING"


def generate_id():
    """20 url-safe base64 characters, like Elasticsearch's auto-generated ids."""
    return secrets.token_urlsafe(15)


def generate_uuid():
    return secrets.token_urlsafe(16)[:22]


def merge(base, update):
    """Partial-document update: objects merge recursively, anything else is replaced."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def truthy(value):
    if isinstance(value, list):
        value = value[0] if value else None
    return value is not None and str(value).lower() in ("", "true")
