#!/usr/bin/env python3
"""A test double for the Elasticsearch 8 REST API that millrace's sink workers use (`_bulk`).

Why it exists: no real Elasticsearch can be installed where millrace's integration tests run, so
the sink is tested against this server instead. It follows the documented `_bulk` contract of
Elasticsearch 8.11 closely (request format, per-item results and error shapes, dynamic mapping
conflicts, data streams, whole-request errors) and adds fault injection and inspection endpoints
under `/_test/` so tests can provoke retries and check exactly what was stored.

Standard library only. Start it with

    python3 tests/python/es_test_server.py --port 0 --port-file PATH [options]

It binds 127.0.0.1, writes its actual port to PATH (temp file + rename) once listening and logs
one line per request to stderr.

Elasticsearch API (subset):
    GET|HEAD /                         cluster info
    POST|PUT /_bulk, /{index}/_bulk    index, create, update, delete (NDJSON, optionally gzip)
    GET|POST /_count, /{index}/_count  document count (comma lists and wildcards; match_all only)
    GET /_cluster/health
    PUT|GET|DELETE /_data_stream/{name}
    PUT|GET|DELETE /_index_template/{name}   (index_patterns, priority, data_stream, mappings)
    PUT|HEAD|DELETE /{index}, GET /{index}/_mapping, GET /{index}/_doc/{id}

Test endpoints (never need auth, work while `down`):
    GET  /_test/docs[?index=EXPR]   {"docs": [{"index", "data_stream", "id", "version", "seq_no",
                                     "source"}]} in order of first write
    GET  /_test/stats               counters (see Store.new_counters)
    GET  /_test/config              the fault-injection settings
    POST /_test/config              change them: {"reject_every": 3, "down": true, ...}
    POST /_test/reset               forget documents, indices, mappings, data streams, API-made
                                    templates and counters (settings are kept)

Fault injection (command-line options or POST /_test/config):
    reject_every N      every Nth bulk request: whole-request 429 es_rejected_execution_exception
    item_429_every N    every Nth bulk item: per-item 429 es_rejected_execution_exception
    down                every request but /_test/* gets 503 cluster_block_exception
    max_body_bytes N    larger (decompressed) bodies get 413 with an empty body (http.max_content_length)
    latency_ms N        sleep before answering bulk requests
    strict_types        mapping conflicts by JSON type family (see below)
    legacy_parsing_errors  document parsing failures as Elasticsearch before 8.8 names them:
                        mapper_parsing_exception without the [line:column] prefix (8.8 and later,
                        and this server by default, say document_parsing_exception)
    total_fields_limit  index.mapping.total_fields.limit (1000)

Mapping: by default a field's type is fixed by the first document that sets it, with
Elasticsearch's dynamic rules (long, float, boolean, object, date for strings that pass date
detection, text+keyword for other strings) and its coercion rules on later documents ("12" fits a
long, 12 fits a text field, "abc" does not fit a long). With strict_types a later value must also
be of the same JSON family (string, number, boolean, object) as the first one, which is simpler
to provoke in tests.

Known deviations from Elasticsearch, chosen on purpose:
  * documents are visible to _count and /_test/docs at once (no refresh interval);
  * PUT /_data_stream/{name} needs no matching index template;
  * reasons of JSON syntax errors come from Python's parser, not Jackson, and the [line:column]
    positions in parse errors are approximate;
  * no scripts, ingest pipelines, aliases, routing or search; custom date formats are accepted
    without being checked; filter_path supports include and exclude patterns with `*` and `**`.
"""

import argparse
import base64
import datetime
import decimal
import fnmatch
import json
import math
import os
import re
import secrets
import sys
import threading
import time
import traceback
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

ES_VERSION = "8.11.0"
CLUSTER_NAME = "millrace-test"
NODE_NAME = "es-test-server"
# Elasticsearch 8 installs index templates that turn these names into data streams.
BUILTIN_DATA_STREAM_PATTERNS = ("logs-*-*", "metrics-*-*", "synthetics-*-*")
DEFAULT_MAX_BODY_BYTES = 100 * 1024 * 1024  # http.max_content_length
MAX_ID_BYTES = 512
MAPPING_DEPTH_LIMIT = 20
# Bodies up to this size are read and dropped before a 413, so the client reads the answer
# instead of a connection reset; larger ones are cut off.
DRAIN_LIMIT = 16 * 1024 * 1024
SHARDS = {"total": 2, "successful": 1, "failed": 0}  # one primary, its replica unassigned
NOOP_SHARDS = {"total": 0, "successful": 0, "failed": 0}
DEFAULT_DATE_FORMAT = "strict_date_optional_time||epoch_millis"
SLASH_DATE_FORMAT = "yyyy/MM/dd HH:mm:ss||yyyy/MM/dd||epoch_millis"
INVALID_NAME_CHARS = ' "*,/<>?\\|'
INVALID_NAME_CHARS_TEXT = "[' ','\"','*',',','/','<','>','?','\\','|']"
BULK_PARAMS = {
    "pipeline", "refresh", "routing", "timeout", "wait_for_active_shards", "require_alias",
    "require_data_stream", "list_executed_pipelines", "_source", "_source_includes",
    "_source_excludes", "pretty", "human", "error_trace", "filter_path",
}
ACTION_PARAMS = {
    "_index", "_id", "routing", "op_type", "version", "version_type", "if_seq_no", "if_primary_term",
    "retry_on_conflict", "pipeline", "_source", "require_alias", "require_data_stream",
    "dynamic_templates", "list_executed_pipelines",
}
LONG_RANGES = {
    "long": (-(2**63), 2**63 - 1),
    "integer": (-(2**31), 2**31 - 1),
    "short": (-(2**15), 2**15 - 1),
    "byte": (-128, 127),
    "unsigned_long": (0, 2**64 - 1),
}
FLOAT_TYPES = {"float", "double", "half_float", "scaled_float"}
STRING_TYPES = {"text", "keyword", "match_only_text", "wildcard", "constant_keyword", "version"}
DATE_TYPES = {"date", "date_nanos"}
OBJECT_TYPES = {"object", "nested"}
OPAQUE_TYPES = {  # accepted and stored without checks
    "ip", "geo_point", "geo_shape", "point", "shape", "flattened", "binary", "dense_vector",
    "sparse_vector", "histogram", "search_as_you_type", "token_count", "completion", "percolator",
    "rank_feature", "rank_features", "integer_range", "float_range", "long_range", "double_range",
    "date_range", "ip_range", "aggregate_metric_double", "alias", "semantic_text",
}
ISO_DATE = re.compile(
    r"^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2})(?::(\d{2})(?::(\d{2})(?:[.,]\d{1,9})?)?)?"
    r"(?:Z|[+-]\d{2}(?::?\d{2})?)?)?)?)?$"
)
SLASH_DATE = re.compile(r"^(\d{4})/(\d{2})/(\d{2})(?: (\d{2}):(\d{2}):(\d{2}))?(?: ?(?:Z|[+-]\d{2}:?\d{2}))?$")
NUMBER_TEXT = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")


def log(message):
    sys.stderr.write(f"{time.strftime('%H:%M:%S')} es-test-server {message}\n")
    sys.stderr.flush()


# ---------------------------------------------------------------------------------------------
# Errors in Elasticsearch's shapes


def error_cause(type_, reason, caused_by=None, **extra):
    cause = {"type": type_, "reason": reason}
    cause.update(extra)
    if caused_by is not None:
        cause["caused_by"] = caused_by
    return cause


def error_body(status, type_, reason, caused_by=None, **extra):
    """The body of a whole-request error: {"error": {"root_cause": [...], ...}, "status": N}."""
    root = error_cause(type_, reason, **extra)
    error = {"root_cause": [root]}
    error.update(error_cause(type_, reason, caused_by, **extra))
    return {"error": error, "status": status}


class HttpError(Exception):
    """A whole-request failure: status, a JSON body (or None for an empty one) and headers."""

    def __init__(self, status, body, headers=(), close=False):
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body
        self.headers = list(headers)
        self.close = close


def request_error(status, type_, reason, caused_by=None, **extra):
    return HttpError(status, error_body(status, type_, reason, caused_by, **extra))


def simple_error(status, message, headers=()):
    """Elasticsearch's plain form for errors raised before a handler runs."""
    return HttpError(status, {"error": message, "status": status}, headers)


class ItemFailure(Exception):
    """A failure of one bulk item: its status and the item's "error" object."""

    def __init__(self, status, type_, reason, caused_by=None, **extra):
        super().__init__(reason)
        self.status = status
        self.error = error_cause(type_, reason, caused_by, **extra)


def validation_error(problems):
    reason = "Validation Failed: " + "".join(f"{n}: {p};" for n, p in enumerate(problems, 1))
    return request_error(400, "action_request_validation_exception", reason)


def index_not_found(name):
    return ItemFailure(
        404, "index_not_found_exception", f"no such index [{name}]",
        **{"resource.type": "index_expression", "resource.id": name, "index_uuid": "_na_", "index": name}
    )


def index_not_found_request(name):
    f = index_not_found(name)
    error = {"root_cause": [dict(f.error)]}
    error.update(f.error)
    return HttpError(404, {"error": error, "status": 404})


# ---------------------------------------------------------------------------------------------
# Strict JSON (as Elasticsearch's parser: duplicate keys and NaN are errors)


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


# ---------------------------------------------------------------------------------------------
# Names, dates, values


def index_name_problem(name):
    """Elasticsearch's index name rules; returns the reason text or None."""
    if name == "":
        return "must not be empty"
    if any(c in INVALID_NAME_CHARS for c in name):
        return f"must not contain the following characters {INVALID_NAME_CHARS_TEXT}"
    if "#" in name:
        return "must not contain '#'"
    if ":" in name:
        return "must not contain ':'"
    if name[0] in "_-+":
        return "must not start with '_', '-', or '+'"
    if name != name.lower():
        return "must be lowercase"
    if name in (".", ".."):
        return "must not be '.' or '..'"
    size = len(name.encode("utf-8"))
    if size > 255:
        return f"index name is too long, ({size} > 255)"
    return None


def invalid_index_name(name, problem):
    return ItemFailure(
        400, "invalid_index_name_exception", f"Invalid index name [{name}], {problem}", index_uuid="_na_", index=name
    )


def is_wildcard(expression):
    return "*" in expression or "?" in expression


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


# ---------------------------------------------------------------------------------------------
# Mappings


class FieldType:
    __slots__ = ("type", "format", "weight")

    def __init__(self, type_, fmt=None, weight=1):
        self.type = type_
        self.format = fmt
        self.weight = weight  # fields it adds toward index.mapping.total_fields.limit

    def to_json(self):
        if self.type == "text" and self.weight == 2:
            return {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}}
        if self.type in OBJECT_TYPES:
            return {} if self.type == "object" else {"type": self.type}
        out = {"type": self.type}
        if self.format and self.type in DATE_TYPES and self.format != DEFAULT_DATE_FORMAT:
            out["format"] = self.format
        return out


class Mapping:
    """Field paths ("a.b") to types, and the root `dynamic` setting (true, false or strict)."""

    def __init__(self, fields=None, dynamic="true"):
        self.fields = dict(fields or {})
        self.dynamic = dynamic

    def copy(self):
        return Mapping(self.fields, self.dynamic)

    def total_fields(self):
        return sum(f.weight for f in self.fields.values())

    def to_json(self):
        root = {}
        if self.dynamic != "true":
            root["dynamic"] = self.dynamic
        props = {}
        for path in sorted(self.fields):
            node = props
            parts = path.split(".")
            for part in parts[:-1]:
                node = node.setdefault(part, {}).setdefault("properties", {})
            entry = node.setdefault(parts[-1], {})
            entry.update(self.fields[path].to_json())
        root["properties"] = props
        return root


def mapping_from_json(body, where):
    """A Mapping from an index's or template's `mappings` object (explicit field types)."""
    if body is None:
        return Mapping()
    if not isinstance(body, dict):
        raise request_error(400, "mapper_parsing_exception", f"{where}: mappings must be an object")
    dynamic = body.get("dynamic", True)
    dynamic = str(dynamic).lower()
    if dynamic not in ("true", "false", "strict", "runtime"):
        raise request_error(400, "mapper_parsing_exception", "Could not convert [dynamic] to boolean or [strict]")
    if dynamic == "runtime":
        dynamic = "false"
    fields = {}

    def walk(props, prefix):
        if not isinstance(props, dict):
            raise request_error(400, "mapper_parsing_exception", f"{where}: [properties] must be an object")
        for name, spec in props.items():
            path = f"{prefix}{name}"
            if not isinstance(spec, dict):
                raise request_error(400, "mapper_parsing_exception", f"Expected map for property [{path}]")
            type_ = spec.get("type", "object")
            if not (type_ in LONG_RANGES or type_ in FLOAT_TYPES or type_ in STRING_TYPES or type_ in DATE_TYPES
                    or type_ in OBJECT_TYPES or type_ in OPAQUE_TYPES or type_ == "boolean"):
                raise request_error(
                    400, "mapper_parsing_exception", f"No handler for type [{type_}] declared on field [{name}]"
                )
            fmt = spec.get("format", DEFAULT_DATE_FORMAT) if type_ in DATE_TYPES else None
            sub = spec.get("fields")
            weight = 1 + (len(sub) if isinstance(sub, dict) else 0)
            fields[path] = FieldType(type_, fmt, weight)
            if "properties" in spec:
                walk(spec["properties"], path + ".")

    walk(body.get("properties", {}), "")
    return Mapping(fields, dynamic)


class DocumentParser:
    """Checks one document against an index's mapping the way Elasticsearch's document parser
    does, collecting the dynamic fields it adds. Raises ItemFailure on the first problem."""

    def __init__(self, mapping, doc_id, raw, strict_types, fields_limit, data_stream):
        self.mapping = mapping
        self.doc_id = doc_id
        self.raw = raw
        self.strict_types = strict_types
        self.fields_limit = fields_limit
        self.data_stream = data_stream
        self.new = {}

    def column(self, key):
        m = re.search(r'"%s"\s*:\s*' % re.escape(key), self.raw)
        return m.end() + 1 if m else 1

    def end_column(self):
        return max(len(self.raw.rstrip()), 1)

    def lookup(self, path):
        return self.new.get(path) or self.mapping.fields.get(path)

    def parse(self, source):
        if not isinstance(source, dict):
            raise ItemFailure(
                400, "document_parsing_exception", "[1:1] failed to parse: Malformed content, must start with an object",
                caused_by=error_cause("illegal_argument_exception", "Malformed content, must start with an object"),
            )
        self.parse_object(source, "", 1)
        if self.data_stream:
            self.check_timestamp(source)
        if self.new:
            added = sum(f.weight for f in self.new.values())
            if self.mapping.total_fields() + added > self.fields_limit:
                reason = f"Limit of total fields [{self.fields_limit}] has been exceeded while adding new fields [{added}]"
                raise ItemFailure(
                    400, "document_parsing_exception", f"[1:{self.end_column()}] failed to parse: {reason}",
                    caused_by=error_cause("illegal_argument_exception", reason),
                )
        return self.new

    def check_timestamp(self, source):
        value = source.get("@timestamp")
        values = [v for v in value if v is not None] if isinstance(value, list) else [value]
        values = [v for v in values if v is not None]
        if not values:
            reason = "data stream timestamp field [@timestamp] is missing"
        elif len(values) > 1:
            reason = "data stream timestamp field [@timestamp] encountered multiple values"
        else:
            return
        raise ItemFailure(
            400, "document_parsing_exception", f"[1:{self.end_column()}] failed to parse: {reason}",
            caused_by=error_cause("illegal_argument_exception", reason),
        )

    def parse_object(self, obj, prefix, depth):
        if depth > MAPPING_DEPTH_LIMIT:
            reason = f"Limit of mapping depth [{MAPPING_DEPTH_LIMIT}] has been exceeded due to object field [{prefix}]"
            raise ItemFailure(
                400, "document_parsing_exception", f"[1:{self.column(prefix.rsplit('.', 1)[-1])}] failed to parse: {reason}",
                caused_by=error_cause("illegal_argument_exception", reason),
            )
        for key, value in obj.items():
            parts = key.split(".")
            if any(p.strip() == "" for p in parts):
                if key == "":
                    reason = "field name cannot be an empty string"
                elif key.strip() == "":
                    reason = f"field name cannot contain only whitespace: ['{key}']"
                elif key.strip(".") == "":
                    reason = "field name cannot contain only dots"
                else:
                    reason = f"field name starting or ending with a [.] or containing [..] makes object resolution ambiguous: [{key}]"
                raise ItemFailure(
                    400, "document_parsing_exception", f"[1:{self.column(key)}] failed to parse: {reason}",
                    caused_by=error_cause("illegal_argument_exception", reason),
                )
            path = prefix
            for part in parts[:-1]:  # "a.b": 1 means {"a": {"b": 1}}
                path = f"{path}.{part}" if path else part
                if not self.ensure_object(path, part, key):
                    break
            else:
                leaf = f"{path}.{parts[-1]}" if path else parts[-1]
                self.parse_value(leaf, parts[-1], value, depth)

    def ensure_object(self, path, name, key):
        existing = self.lookup(path)
        if existing is None:
            return self.add_dynamic(path, name, FieldType("object"))
        if existing.type not in OBJECT_TYPES:
            reason = (
                f"Could not dynamically add mapping for field [{key}]. Existing mapping for [{path}] must be of type "
                f"object but found [{existing.type}]."
            )
            raise ItemFailure(
                400, "document_parsing_exception", f"[1:{self.column(key)}] failed to parse: {reason}",
                caused_by=error_cause("illegal_argument_exception", reason),
            )
        return True

    def add_dynamic(self, path, name, field_type):
        """Adds a dynamic field; False when `dynamic: false` ignores it."""
        if self.mapping.dynamic == "strict":
            within = path.rsplit(".", 1)[0] if "." in path else "_doc"
            raise ItemFailure(
                400, "strict_dynamic_mapping_exception",
                f"[1:{self.column(name)}] mapping set to strict, dynamic introduction of [{name}] within [{within}] is not allowed",
            )
        if self.mapping.dynamic == "false":
            return False
        self.new[path] = field_type
        return True

    def parse_value(self, path, name, value, depth):
        if value is None:
            return
        if isinstance(value, list):
            pending = list(reversed(value))
            while pending:  # nested arrays are flattened
                item = pending.pop()
                if isinstance(item, list):
                    pending.extend(reversed(item))
                elif item is not None:
                    self.parse_value(path, name, item, depth)
            return
        field = self.lookup(path)
        if field is None:
            field = self.dynamic_type(value)
            if not self.add_dynamic(path, name, field):
                return
        else:
            self.check(path, name, field, value)
        if field.type in OBJECT_TYPES and isinstance(value, dict):
            self.parse_object(value, path, depth + 1)

    def dynamic_type(self, value):
        if isinstance(value, bool):
            return FieldType("boolean")
        if isinstance(value, int):
            return FieldType("long")
        if isinstance(value, float):
            return FieldType("float")
        if isinstance(value, dict):
            return FieldType("object")
        fmt = None if self.strict_types else detect_date(value)
        if fmt:
            return FieldType("date", fmt)
        return FieldType("text", weight=2)

    def field_failure(self, path, name, field, value, cause):
        reason = (
            f"[1:{self.column(name)}] failed to parse field [{path}] of type [{field.type}] in document with id "
            f"'{self.doc_id}'. Preview of field's value: '{preview(value)}'"
        )
        return ItemFailure(400, "document_parsing_exception", reason, caused_by=cause)

    def check(self, path, name, field, value):
        family = type_family(field.type)
        if family == "opaque":
            return
        if family == "object":
            if not isinstance(value, dict):
                raise ItemFailure(
                    400, "document_parsing_exception",
                    f"[1:{self.column(name)}] object mapping for [{path}] tried to parse field [{name}] as object, "
                    "but found a concrete value",
                )
            return
        if isinstance(value, dict):
            raise self.field_failure(path, name, field, value, error_cause(
                "illegal_state_exception", f"Can't get text on a START_OBJECT at 1:{self.column(name)}"))
        if self.strict_types and family in ("number", "string", "boolean") and value_family(value) != family:
            raise self.field_failure(path, name, field, value, error_cause(
                "illegal_argument_exception",
                f"field [{path}] is mapped as [{field.type}] and strict_types allows no [{value_family(value)}] value",
            ))
        if family == "number":
            self.check_number(path, name, field, value)
        elif family == "boolean":
            self.check_boolean(path, name, field, value)
        elif family == "date":
            if isinstance(value, bool) or not date_matches(value, field.format or DEFAULT_DATE_FORMAT):
                raise self.field_failure(path, name, field, value, error_cause(
                    "illegal_argument_exception",
                    f"failed to parse date field [{preview(value)}] with format [{field.format or DEFAULT_DATE_FORMAT}]",
                    caused_by=error_cause("date_time_parse_exception", "Failed to parse with all enclosed parsers"),
                ))
        # strings: text and keyword fields take any scalar

    def check_number(self, path, name, field, value):
        if isinstance(value, bool):
            raise self.field_failure(path, name, field, value, error_cause(
                "x_content_parse_exception",
                f"[1:{self.column(name)}] Current token ({token_name(value)}) not numeric, can not use numeric value accessors",
            ))
        number = value
        if isinstance(value, str):  # coerce is on by default
            if not NUMBER_TEXT.match(value):
                raise self.field_failure(path, name, field, value, error_cause(
                    "illegal_argument_exception" if field.type in LONG_RANGES else "number_format_exception",
                    f'For input string: "{value}"',
                ))
            number = decimal.Decimal(value)
        if field.type in LONG_RANGES:
            low, high = LONG_RANGES[field.type]
            if isinstance(number, float) and not math.isfinite(number):
                whole = None
            else:
                whole = int(number)  # coerce truncates fractions
            if whole is None or not low <= whole <= high:
                raise self.field_failure(path, name, field, value, error_cause(
                    "illegal_argument_exception", f"Value [{preview(value)}] is out of range for a {field.type}"))
        else:
            as_float = float(number)
            limit = 3.4028234663852886e38 if field.type in ("float", "half_float") else sys.float_info.max
            if not math.isfinite(as_float) or abs(as_float) > limit:
                raise self.field_failure(path, name, field, value, error_cause(
                    "illegal_argument_exception", f"[{field.type}] supports only finite values, but got [{preview(value)}]"))

    def check_boolean(self, path, name, field, value):
        if isinstance(value, bool):
            return
        if isinstance(value, str):
            if value in ("true", "false", ""):
                return
            raise self.field_failure(path, name, field, value, error_cause(
                "illegal_argument_exception", f"Failed to parse value [{value}] as only [true] or [false] are allowed."))
        raise self.field_failure(path, name, field, value, error_cause(
            "x_content_parse_exception", f"[1:{self.column(name)}] Current token ({token_name(value)}) not of boolean type"))


# ---------------------------------------------------------------------------------------------
# The store


class Doc:
    __slots__ = ("id", "version", "seq_no", "source", "order")

    def __init__(self, doc_id, version, seq_no, source, order):
        self.id = doc_id
        self.version = version
        self.seq_no = seq_no
        self.source = source
        self.order = order


class Index:
    def __init__(self, name, mapping=None, data_stream=None):
        self.name = name
        self.uuid = generate_uuid()
        self.mapping = mapping.copy() if mapping else Mapping()
        self.data_stream = data_stream
        self.docs = {}
        self.tombstones = {}  # id -> version of the deleted document
        self.seq_no = -1

    def next_seq_no(self):
        self.seq_no += 1
        return self.seq_no

    def conflict(self, doc_id, reason):
        return ItemFailure(
            409, "version_conflict_engine_exception", f"[{doc_id}]: version conflict, {reason}",
            index_uuid=self.uuid, shard="0", index=self.name,
        )


class Template:
    def __init__(self, name, patterns, priority, data_stream, mapping, builtin, body=None):
        self.name = name
        self.patterns = patterns
        self.priority = priority
        self.data_stream = data_stream
        self.mapping = mapping
        self.builtin = builtin
        self.body = body or {"index_patterns": patterns, "priority": priority}

    def matches(self, name):
        return any(fnmatch.fnmatchcase(name, p) for p in self.patterns)


def data_stream_mapping(base):
    mapping = base.copy() if base else Mapping()
    mapping.fields.setdefault("@timestamp", FieldType("date", DEFAULT_DATE_FORMAT))
    return mapping


class Settings:
    """Fault-injection settings; changed by the command line and by POST /_test/config."""

    INT_KEYS = ("reject_every", "item_429_every", "max_body_bytes", "total_fields_limit")
    FLOAT_KEYS = ("latency_ms",)
    BOOL_KEYS = ("down", "strict_types", "legacy_parsing_errors")

    def __init__(self):
        self.reject_every = 0
        self.item_429_every = 0
        self.down = False
        self.max_body_bytes = DEFAULT_MAX_BODY_BYTES
        self.latency_ms = 0
        self.strict_types = False
        self.legacy_parsing_errors = False
        self.total_fields_limit = 1000

    def to_json(self):
        return {k: getattr(self, k) for k in self.INT_KEYS + self.FLOAT_KEYS + self.BOOL_KEYS}

    @classmethod
    def check(cls, changes):
        """Validates a /_test/config body; returns an error message or None."""
        if not isinstance(changes, dict):
            return "the body must be a JSON object"
        for key, value in changes.items():
            if key in cls.INT_KEYS or key in cls.FLOAT_KEYS:
                if isinstance(value, bool) or not isinstance(value, (int, float) if key in cls.FLOAT_KEYS else int):
                    return f"[{key}] must be a number"
                if value < 0 or (key in ("max_body_bytes", "total_fields_limit") and value <= 0):
                    return f"[{key}] is out of range: {value}"
            elif key in cls.BOOL_KEYS:
                if not isinstance(value, bool):
                    return f"[{key}] must be true or false"
            else:
                return f"unknown setting [{key}]; known: {sorted(cls.INT_KEYS + cls.FLOAT_KEYS + cls.BOOL_KEYS)}"
        return None


class Store:
    """Everything the server holds. One lock guards all of it."""

    def __init__(self, settings, data_stream_patterns, builtin_templates):
        self.lock = threading.Lock()
        self.settings = settings
        self.static_templates = []
        if builtin_templates:
            for pattern in BUILTIN_DATA_STREAM_PATTERNS:
                name = pattern.split("-", 1)[0]
                self.static_templates.append(Template(name, [pattern], 100, True, Mapping(), True))
        for n, pattern in enumerate(data_stream_patterns):
            self.static_templates.append(Template(f"cli-data-stream-{n}", [pattern], 200, True, Mapping(), True))
        self.clear()

    def clear(self):
        self.indices = {}
        self.data_streams = {}  # name -> {"name", "indices": [backing names], "generation", "template"}
        self.templates = {}
        self.counters = self.new_counters()
        self.bulk_phase = 0
        self.item_phase = 0
        self.order = 0

    @staticmethod
    def new_counters():
        return {
            "requests": 0,  # every request except /_test/*
            "bulk_requests": 0,  # _bulk requests that reached the bulk handler (past down, auth and size checks)
            "items": 0,  # items answered in 200 bulk responses
            "items_by_status": {},  # per-item status -> count
            "rejected_requests_429": 0,  # whole bulk requests rejected by reject_every
            "rejected_items_429": 0,  # items rejected by item_429_every
            "down_503": 0,
            "too_large_413": 0,
            "unauthorized_401": 0,
            "gzip_requests": 0,  # bulk requests with a compressed body
            "max_items_in_a_request": 0,
            "bytes_received": 0,  # bulk request bodies as sent (compressed or not)
            "bytes_decompressed": 0,  # bulk request bodies after decompression
        }

    def all_templates(self):
        return self.static_templates + list(self.templates.values())

    def template_for(self, name):
        best = None
        for template in self.all_templates():
            if template.matches(name) and (best is None or template.priority > best.priority):
                best = template
        return best

    # -- resolution --------------------------------------------------------------------------

    def create_data_stream(self, name, template=None):
        day = datetime.datetime.now(datetime.timezone.utc).strftime("%Y.%m.%d")
        backing = Index(f".ds-{name}-{day}-000001", data_stream_mapping(template.mapping if template else None), name)
        self.indices[backing.name] = backing
        self.data_streams[name] = {
            "name": name, "indices": [backing.name], "generation": 1,
            "template": template.name if template else None,
        }
        return backing

    def write_index(self, name):
        """The index a write to `name` lands in, or None: data streams resolve to their write index."""
        stream = self.data_streams.get(name)
        if stream:
            return self.indices[stream["indices"][-1]]
        return self.indices.get(name)

    def resolve_for_write(self, name, auto_create):
        """(index, is_data_stream_name) for a bulk item; auto-creates like action.auto_create_index."""
        index = self.write_index(name)
        if index is not None:
            return index, name in self.data_streams
        if not auto_create:
            raise index_not_found(name)
        problem = index_name_problem(name)
        if problem:
            raise invalid_index_name(name, problem)
        template = self.template_for(name)
        if template and template.data_stream:
            if name.startswith(".ds-"):
                raise invalid_index_name(name, "data_stream [" + name + "] must not start with '.ds-'")
            return self.create_data_stream(name, template), True
        index = Index(name, template.mapping if template else None)
        self.indices[name] = index
        return index, False

    def resolve_read(self, expression, lenient=False):
        """Indices named by a comma list of names, data stream names and wildcard patterns."""
        parts = [p for p in (expression or "").split(",") if p]
        if not parts or parts == ["_all"]:
            parts = ["*"]
        found = {}
        for part in parts:
            if is_wildcard(part):
                for name, index in self.indices.items():
                    hidden = name.startswith(".") and not part.startswith(".")
                    if not hidden and index.data_stream is None and fnmatch.fnmatchcase(name, part):
                        found[name] = index
                for name, stream in self.data_streams.items():
                    if fnmatch.fnmatchcase(name, part):
                        for backing in stream["indices"]:
                            found[backing] = self.indices[backing]
            elif part in self.data_streams:
                for backing in self.data_streams[part]["indices"]:
                    found[backing] = self.indices[backing]
            elif part in self.indices:
                found[part] = self.indices[part]
            elif not lenient:
                raise index_not_found_request(part)
        return list(found.values())


# ---------------------------------------------------------------------------------------------
# Bulk


class BulkAction:
    __slots__ = ("op", "key", "index", "id", "params", "source", "update", "line")

    def __init__(self, op, key, index, doc_id, params, line):
        self.op = op  # index, create, update, delete
        self.key = key  # the response item's key (index with op_type=create answers as "create")
        self.index = index
        self.id = doc_id
        self.params = params
        self.source = None  # raw source bytes of index/create
        self.update = None  # parsed update body
        self.line = line


def parse_bulk(body, default_index, query):
    """Splits an NDJSON bulk body into actions. Problems with the request as a whole (syntax of
    action lines, unknown actions, missing index or id) fail the request with 400, as in
    Elasticsearch; problems of one document's source fail only that item later."""
    if not body:
        raise request_error(400, "parse_exception", "request body is required")
    if not body.endswith(b"\n"):
        raise request_error(400, "illegal_argument_exception", "The bulk request must be terminated by a newline [\\n]")
    lines = body[:-1].split(b"\n")
    actions = []
    problems = []
    default_pipeline = (query.get("pipeline") or [None])[0]
    n = 0
    while n < len(lines):
        line_no = n + 1
        raw = lines[n]
        n += 1
        try:
            action = parse_json_bytes(raw)
        except JsonError as e:
            raise request_error(
                400, "x_content_parse_exception", f"[1:{e.column}] {e.message} (bulk body line [{line_no}])"
            ) from None
        if not isinstance(action, dict):
            found = "START_ARRAY" if isinstance(action, list) else token_name(action) if action is not None else "VALUE_NULL"
            raise request_error(
                400, "illegal_argument_exception",
                f"Malformed action/metadata line [{line_no}], expected START_OBJECT or END_OBJECT but found [{found}]",
            )
        if len(action) != 1:
            expected = "FIELD_NAME" if not action else "END_OBJECT"
            found = "END_OBJECT" if not action else "FIELD_NAME"
            raise request_error(
                400, "illegal_argument_exception",
                f"Malformed action/metadata line [{line_no}], expected {expected} but found [{found}]",
            )
        op, meta = next(iter(action.items()))
        if op not in ("index", "create", "update", "delete"):
            raise request_error(
                400, "illegal_argument_exception",
                f"Malformed action/metadata line [{line_no}], expected field [create], [delete], [index] or [update] "
                f"but found [{op}]",
            )
        if not isinstance(meta, dict):
            raise request_error(
                400, "illegal_argument_exception",
                f"Malformed action/metadata line [{line_no}], expected START_OBJECT but found [{token_name(meta)}]",
            )
        for key, value in meta.items():
            if key not in ACTION_PARAMS:
                raise request_error(
                    400, "illegal_argument_exception", f"Action/metadata line [{line_no}] contains an unknown parameter [{key}]"
                )
            if isinstance(value, (dict, list)) and key not in ("_source", "dynamic_templates"):
                raise request_error(
                    400, "illegal_argument_exception",
                    f"Malformed action/metadata line [{line_no}], expected a simple value for field [{key}] but found "
                    f"[{'START_OBJECT' if isinstance(value, dict) else 'START_ARRAY'}]",
                )
        index = meta.get("_index")
        index = str(index) if index is not None else default_index
        doc_id = meta.get("_id")
        doc_id = (str(doc_id).lower() if isinstance(doc_id, bool) else str(doc_id)) if doc_id is not None else None
        key = op
        if op == "index" and meta.get("op_type") is not None:
            op_type = str(meta["op_type"]).lower()
            if op_type not in ("index", "create"):
                raise request_error(400, "illegal_argument_exception", f"opType must be 'create' or 'index', found: [{meta['op_type']}]")
            op = key = op_type
        params = dict(meta)
        if default_pipeline is not None and "pipeline" not in params:
            params["pipeline"] = default_pipeline
        item = BulkAction(op, key, index, doc_id, params, line_no)
        # Request validation, collected over the whole request like BulkRequest.validate().
        if index is None or index == "":
            problems.append("index is missing")
        if op in ("update", "delete") and doc_id is None:
            problems.append("id is missing")
        if doc_id is not None:
            if doc_id == "":
                problems.append("if _id is specified it must not be empty")
            elif len(doc_id.encode("utf-8")) > MAX_ID_BYTES:
                problems.append(
                    f"id [{doc_id}] is too long, must be no longer than {MAX_ID_BYTES} bytes but was: "
                    f"{len(doc_id.encode('utf-8'))}"
                )
        version_type = str(params.get("version_type", "internal")).lower()
        if version_type not in ("internal", "external", "external_gte"):
            raise request_error(400, "illegal_argument_exception", f"No version type match [{params['version_type']}]")
        if "version" in params and op == "update":
            problems.append("update requests do not support versioning. Please use `if_seq_no` and `if_primary_term` instead")
        elif "version" in params and version_type == "internal":
            problems.append(
                "internal versioning can not be used for optimistic concurrency control. Please use `if_seq_no` and "
                "`if_primary_term` instead"
            )
        if version_type != "internal" and op == "create":
            problems.append("create operations only support internal versioning. use index instead")
        if version_type != "internal" and "version" not in params and op != "update":
            problems.append(f"version type [{version_type}] requires a version")
        if ("if_seq_no" in params) != ("if_primary_term" in params):
            problems.append("ifSeqNo is set, but primary term is [0]" if "if_seq_no" in params else "ifPrimaryTerm is set, but seq no is unassigned")
        for numeric in ("if_seq_no", "if_primary_term", "version", "retry_on_conflict"):
            if numeric in params and (isinstance(params[numeric], bool) or not _as_int(params[numeric])[0]):
                raise request_error(
                    400, "illegal_argument_exception", f"[{numeric}] must be a number in action/metadata line [{line_no}]"
                )
        if op != "delete":
            if n >= len(lines):
                problems.append("source is missing" if op != "update" else "script or doc is missing")
                actions.append(item)
                continue
            source = lines[n]
            n += 1
            if op == "update":
                item.update = parse_update_body(source, n)
                if "doc" not in item.update:
                    problems.append("script or doc is missing")
            else:
                item.source = source
        if op in ("index", "create") and doc_id is None:
            item.id = generate_id()  # ids are assigned before the documents reach a shard
        actions.append(item)
    if not actions:
        problems.append("no requests added")
    if problems:
        raise validation_error(problems)
    return actions


def _as_int(value):
    try:
        return True, int(str(value))
    except ValueError:
        return False, None


UPDATE_FIELDS = {"doc", "upsert", "doc_as_upsert", "detect_noop", "_source", "scripted_upsert", "script", "lang", "params"}


def parse_update_body(raw, line_no):
    try:
        body = parse_json_bytes(raw)
    except JsonError as e:
        raise request_error(400, "x_content_parse_exception", f"[1:{e.column}] {e.message} (bulk body line [{line_no}])") from None
    if not isinstance(body, dict):
        raise request_error(400, "x_content_parse_exception", f"[1:1] [UpdateRequest] Expected START_OBJECT (bulk body line [{line_no}])")
    for key in body:
        if key not in UPDATE_FIELDS:
            raise request_error(400, "x_content_parse_exception", f"[1:2] [UpdateRequest] unknown field [{key}]")
    if "script" in body or "scripted_upsert" in body:
        raise request_error(400, "illegal_argument_exception", "scripted updates are not supported by this Elasticsearch test double")
    for key in ("doc", "upsert"):
        if key in body and not isinstance(body[key], dict):
            raise request_error(400, "x_content_parse_exception", f"[1:2] [UpdateRequest] failed to parse field [{key}]")
    for key in ("doc_as_upsert", "detect_noop"):
        if key in body and not isinstance(body[key], bool):
            raise request_error(400, "x_content_parse_exception", f"[1:2] [UpdateRequest] failed to parse field [{key}]")
    return body


def ok_item(index, doc_id, version, result, status, seq_no, shards=SHARDS):
    return {
        "_index": index.name, "_id": doc_id, "_version": version, "result": result, "_shards": dict(shards),
        "_seq_no": seq_no, "_primary_term": 1, "status": status,
    }


class BulkExecutor:
    """Runs parsed bulk actions against the store; the caller holds the store's lock."""

    def __init__(self, store, query):
        self.store = store
        self.settings = store.settings
        self.require_alias = _truthy(query.get("require_alias"))

    def run(self, actions):
        items = []
        for action in actions:
            # Failures before a shard is reached name the target as written; later ones the concrete
            # (for data streams: backing) index.
            self.resolved = action.index
            try:
                item = self.run_one(action)
            except ItemFailure as failure:
                error = legacy_error(failure.error) if self.settings.legacy_parsing_errors else failure.error
                item = {"_index": self.resolved, "_id": action.id, "status": failure.status, "error": error}
            items.append({action.key: item})
        return items

    def run_one(self, action):
        store = self.store
        if self.settings.item_429_every:
            store.item_phase += 1
            if store.item_phase % self.settings.item_429_every == 0:
                store.counters["rejected_items_429"] += 1
                raise ItemFailure(
                    429, "es_rejected_execution_exception",
                    "rejected execution of primary operation [coordinating_and_primary_bytes=0, replica_bytes=0, "
                    "all_bytes=0, primary_operation_bytes=0, max_coordinating_and_primary_bytes=0] "
                    "(injected by item_429_every)",
                )
        if self.require_alias or _truthy(action.params.get("require_alias")):
            raise ItemFailure(
                404, "index_not_found_exception",
                f"no such index [{action.index}] and [require_alias] request flag is [true] and [{action.index}] is not an alias",
                index_uuid="_na_", index=action.index,
            )
        pipeline = action.params.get("pipeline")
        if pipeline is not None and pipeline != "_none":
            raise ItemFailure(400, "illegal_argument_exception", f"pipeline with id [{pipeline}] does not exist")
        auto_create = action.op in ("index", "create") or (
            action.op == "update" and ("upsert" in action.update or action.update.get("doc_as_upsert"))
        )
        index, is_stream = store.resolve_for_write(action.index, auto_create)
        self.check_data_stream_rules(action, index, is_stream)
        self.resolved = index.name
        if action.op == "delete":
            return self.delete(action, index)
        if action.op == "update":
            return self.update(action, index)
        return self.write(action, index)

    def check_data_stream_rules(self, action, index, is_stream):
        if is_stream and action.op != "create":
            raise ItemFailure(400, "illegal_argument_exception", "only write ops with an op_type of create are allowed in data streams")
        if index.data_stream and not is_stream:  # addressed a backing index directly
            if action.op == "create":
                raise ItemFailure(
                    400, "illegal_argument_exception",
                    f"index request with op_type=create targeting backing indices is disallowed, target corresponding "
                    f"data stream [{index.data_stream}] instead",
                )
            if action.op == "index" and "if_seq_no" not in action.params:
                raise ItemFailure(
                    400, "illegal_argument_exception",
                    f"index request with op_type=index and no if_primary_term and if_seq_no set targeting backing indices "
                    f"is disallowed, target corresponding data stream [{index.data_stream}] instead",
                )

    def parse_source(self, action, index):
        raw = action.source
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise self.unparsable(index, e.start + 1, f"Invalid UTF-8 start byte 0x{raw[e.start]:02x}") from None
        if text.strip() == "":
            raise ItemFailure(400, "document_parsing_exception", "[1:1] failed to parse, document is empty")
        try:
            source = parse_json(text)
        except JsonError as e:
            raise self.unparsable(index, e.column, e.message) from None
        return text, source

    @staticmethod
    def unparsable(index, column, message):
        return ItemFailure(
            400, "document_parsing_exception", f"[1:{column}] failed to parse: {message}",
            caused_by=error_cause("x_content_parse_exception", f"[1:{column}] {message}"),
        )

    def apply_mapping(self, index, doc_id, raw, source):
        parser = DocumentParser(
            index.mapping, doc_id, raw, self.settings.strict_types, self.settings.total_fields_limit, index.data_stream
        )
        new_fields = parser.parse(source)
        index.mapping.fields.update(new_fields)  # dynamic updates stick even if the write then conflicts

    def check_concurrency(self, action, index, current):
        """if_seq_no/if_primary_term and external versions; returns the version to write or None."""
        params = action.params
        if "if_seq_no" in params:
            seq_no, term = int(str(params["if_seq_no"])), int(str(params["if_primary_term"]))
            if current is None:
                raise index.conflict(action.id, f"required seqNo [{seq_no}], primary term [{term}]. but no document was found")
            if current.seq_no != seq_no or term != 1:
                raise index.conflict(
                    action.id,
                    f"required seqNo [{seq_no}], primary term [{term}]. current document has seqNo [{current.seq_no}] "
                    "and primary term [1]",
                )
        version_type = str(params.get("version_type", "internal")).lower()
        if version_type == "internal":
            return None
        wanted = int(str(params["version"]))
        have = current.version if current else index.tombstones.get(action.id)
        if have is not None:
            if version_type == "external" and have >= wanted:
                raise index.conflict(action.id, f"current version [{have}] is higher or equal to the one provided [{wanted}]")
            if version_type == "external_gte" and have > wanted:
                raise index.conflict(action.id, f"current version [{have}] is higher than the one provided [{wanted}]")
        return wanted

    def store_doc(self, index, doc_id, source, forced_version=None):
        current = index.docs.get(doc_id)
        if forced_version is not None:
            version = forced_version
        elif current is not None:
            version = current.version + 1
        else:
            version = index.tombstones.get(doc_id, 0) + 1
        seq_no = index.next_seq_no()
        if current is not None:
            current.version, current.seq_no, current.source = version, seq_no, source
        else:
            self.store.order += 1
            index.docs[doc_id] = Doc(doc_id, version, seq_no, source, self.store.order)
            index.tombstones.pop(doc_id, None)
        return current is None, version, seq_no

    def write(self, action, index):
        raw, source = self.parse_source(action, index)
        self.apply_mapping(index, action.id, raw, source)
        current = index.docs.get(action.id)
        if action.op == "create" and current is not None:
            raise index.conflict(action.id, f"document already exists (current version [{current.version}])")
        forced = self.check_concurrency(action, index, current)
        created, version, seq_no = self.store_doc(index, action.id, source, forced)
        return ok_item(index, action.id, version, "created" if created else "updated", 201 if created else 200, seq_no)

    def update(self, action, index):
        body = action.update
        current = index.docs.get(action.id)
        self.check_concurrency(action, index, current)
        if current is None:
            if body.get("doc_as_upsert"):
                new_source = body["doc"]
            elif "upsert" in body:
                new_source = body["upsert"]
            else:
                raise ItemFailure(
                    404, "document_missing_exception", f"[{action.id}]: document missing",
                    index_uuid=index.uuid, shard="0", index=index.name,
                )
        else:
            new_source = merge(current.source, body["doc"])
            if new_source == current.source and body.get("detect_noop", True):
                return ok_item(index, action.id, current.version, "noop", 200, current.seq_no, NOOP_SHARDS)
        raw = json.dumps(new_source, ensure_ascii=False)
        self.apply_mapping(index, action.id, raw, new_source)
        created, version, seq_no = self.store_doc(index, action.id, new_source)
        return ok_item(index, action.id, version, "created" if created else "updated", 201 if created else 200, seq_no)

    def delete(self, action, index):
        current = index.docs.get(action.id)
        forced = self.check_concurrency(action, index, current)
        seq_no = index.next_seq_no()
        if current is None:
            version = forced if forced is not None else index.tombstones.get(action.id, 0) + 1
            index.tombstones[action.id] = version
            return ok_item(index, action.id, version, "not_found", 404, seq_no)
        version = forced if forced is not None else current.version + 1
        del index.docs[action.id]
        index.tombstones[action.id] = version
        return ok_item(index, action.id, version, "deleted", 200, seq_no)


def legacy_error(error):
    """A document parsing failure as Elasticsearch 7.x to 8.7 reported it."""
    if error["type"] not in ("document_parsing_exception", "strict_dynamic_mapping_exception"):
        return error
    error = dict(error)
    if error["type"] == "document_parsing_exception":
        error["type"] = "mapper_parsing_exception"
    error["reason"] = re.sub(r"^\[\d+:\d+\] ", "", error["reason"])
    return error


def _truthy(value):
    if isinstance(value, list):
        value = value[0] if value else None
    return value is not None and str(value).lower() in ("", "true")


# ---------------------------------------------------------------------------------------------
# filter_path


_MISSING = object()


def filter_path(value, spec):
    """Elasticsearch's response filtering: comma-separated dotted paths with `*` and `**`;
    a leading `-` excludes. Empty objects and arrays are dropped."""
    includes = [p.split(".") for p in spec.split(",") if p and not p.startswith("-")]
    excludes = [p[1:].split(".") for p in spec.split(",") if p.startswith("-") and len(p) > 1]
    if includes:
        value = _include(value, includes)
        if value is _MISSING:
            return {}
    if excludes:
        value = _exclude(value, excludes)
        if value is _MISSING:
            return {}
    return value


def _descend(key, patterns):
    out = []
    for p in patterns:
        if p[0] == "**":
            out.append(p)
            if len(p) > 1 and fnmatch.fnmatchcase(key, p[1]):
                out.append(p[2:])
        elif fnmatch.fnmatchcase(key, p[0]):
            out.append(p[1:])
    return out


def _include(value, patterns):
    if any(len(p) == 0 for p in patterns):
        return value
    if isinstance(value, dict):
        out = {}
        for key, sub in value.items():
            rest = _descend(key, patterns)
            if rest:
                kept = _include(sub, rest)
                if kept is not _MISSING:
                    out[key] = kept
        return out if out else _MISSING
    if isinstance(value, list):
        kept = [k for k in (_include(v, patterns) for v in value) if k is not _MISSING]
        return kept if kept else _MISSING
    return _MISSING


def _exclude(value, patterns):
    if any(len(p) == 0 for p in patterns):
        return _MISSING
    if isinstance(value, dict):
        out = {}
        for key, sub in value.items():
            rest = _descend(key, patterns)
            kept = _exclude(sub, rest) if rest else sub
            if kept is not _MISSING:
                out[key] = kept
        return out
    if isinstance(value, list):
        return [k for k in (_exclude(v, patterns) for v in value) if k is not _MISSING]
    return value


# ---------------------------------------------------------------------------------------------
# HTTP


class Response:
    def __init__(self, status, body=None, headers=(), close=False):
        self.status = status
        self.body = body  # JSON-able, bytes, or None for no body
        self.headers = list(headers)
        self.close = close


def decompress(data, encoding, limit):
    """Inflates a gzip or deflate body, never past `limit` bytes (413 beyond)."""
    if encoding in ("gzip", "x-gzip"):
        wbits_options = [31]
    else:  # deflate: zlib-wrapped, or raw as some clients send it
        wbits_options = [15, -15]
    last_error = None
    for wbits in wbits_options:
        try:
            out = bytearray()
            rest = data
            while rest:
                inflater = zlib.decompressobj(wbits)
                out += inflater.decompress(rest, limit + 1 - len(out))
                if len(out) > limit or inflater.unconsumed_tail:
                    raise HttpError(413, None, close=True)
                if not inflater.eof:
                    raise zlib.error("truncated compressed body")
                rest = inflater.unused_data if wbits == 31 else b""
            return bytes(out)
        except zlib.error as e:
            last_error = e
    raise request_error(400, "illegal_argument_exception", f"failed to decompress the request body ({encoding}): {last_error}")


def content_type_ok(value):
    media = value.split(";", 1)[0].strip().lower()
    return media in (
        "application/json", "application/x-ndjson",
        "application/vnd.elasticsearch+json", "application/vnd.elasticsearch+x-ndjson",
    )


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "es-test-server"
    sys_version = ""
    timeout = 120  # idle keep-alive connections are dropped after this

    # The server object carries: store, auth (dict), and nothing else.

    def log_message(self, format, *args):  # noqa: A002 - BaseHTTPRequestHandler's signature
        log(f"{self.address_string()} {format % args}")

    def log_request(self, code="-", size="-"):
        pass  # dispatch() logs one line per request itself

    def do_GET(self):
        self.dispatch()

    def do_HEAD(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def do_PUT(self):
        self.dispatch()

    def do_DELETE(self):
        self.dispatch()

    def do_PATCH(self):
        self.dispatch()

    def do_OPTIONS(self):
        self.dispatch()

    def handle_expect_100(self):
        length = self.headers.get("Content-Length")
        if length and length.isdigit() and int(length) > self.server.store.settings.max_body_bytes:
            self.close_connection = True
            if not self.path.startswith("/_test/"):
                with self.server.store.lock:
                    self.server.store.counters["too_large_413"] += 1
            self.send_response(413)
            self.send_header("Content-Length", "0")
            self.send_header("Connection", "close")
            self.end_headers()
            log(f"{self.command} {self.path} -> 413 (Expect: 100-continue refused)")
            return False
        return super().handle_expect_100()

    def dispatch(self):
        started = time.monotonic()
        self.note = ""
        self.raw_length = 0
        try:
            response = self.route()
        except HttpError as e:
            response = Response(e.status, e.body, e.headers, e.close)
        except Exception as e:  # never let one request take the server down
            traceback.print_exc(file=sys.stderr)
            response = Response(500, error_body(500, "exception", f"es_test_server internal error: {type(e).__name__}: {e}"))
        try:
            sent = self.send(response)
        except OSError as e:
            self.close_connection = True
            self.note += f" (client gone: {e})"
            sent = 0
        elapsed = (time.monotonic() - started) * 1000
        log(
            f"{self.command} {self.path} -> {response.status} in={self.raw_length}B out={sent}B "
            f"{elapsed:.1f}ms{self.note}"
        )

    def send(self, response):
        if response.body is None:
            payload = b""
        elif isinstance(response.body, bytes):
            payload = response.body
        else:
            pretty = _truthy(self.query.get("pretty")) if hasattr(self, "query") else False
            body = response.body
            spec = (self.query.get("filter_path") or [None])[0] if hasattr(self, "query") else None
            if spec and 200 <= response.status < 300 and isinstance(body, dict):
                body = filter_path(body, spec)
            text = json.dumps(body, ensure_ascii=False, indent=2 if pretty else None,
                              separators=None if pretty else (",", ":"))
            payload = (text + ("\n" if pretty else "")).encode("utf-8")
        self.send_response(response.status)
        if response.body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("X-elastic-product", "Elasticsearch")
        for name, value in response.headers:
            self.send_header(name, value)
        if response.close:
            self.close_connection = True
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and payload:
            self.wfile.write(payload)
        return len(payload)

    # -- request plumbing --------------------------------------------------------------------

    def read_body(self, limit):
        """The raw body; raises 413 (and closes the connection) when it is larger than `limit`."""
        encoding = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in encoding:
            out = bytearray()
            while True:
                size_line = self.rfile.readline(1024)
                if not size_line:
                    raise HttpError(400, {"error": "truncated chunked body", "status": 400}, close=True)
                try:
                    size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                except ValueError:
                    raise HttpError(400, {"error": "invalid chunk size in chunked body", "status": 400}, close=True) from None
                if size == 0:
                    while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                if len(out) + size > limit:
                    self.drain_chunks(size, len(out))
                    raise HttpError(413, None, close=True)
                out += self.rfile.read(size)
                self.rfile.readline(8)
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        if not length.strip().isdigit():
            raise HttpError(400, {"error": f"invalid Content-Length [{length}]", "status": 400}, close=True)
        length = int(length)
        if length > limit:
            if length <= DRAIN_LIMIT:
                self.drain(length)
            raise HttpError(413, None, close=True)
        data = self.rfile.read(length)
        if len(data) != length:
            raise HttpError(400, {"error": "truncated body", "status": 400}, close=True)
        return data

    def drain(self, length):
        while length > 0:
            chunk = self.rfile.read(min(length, 65536))
            if not chunk:
                return
            length -= len(chunk)

    def drain_chunks(self, size, seen):
        """Reads and drops the rest of a chunked body (bounded by DRAIN_LIMIT)."""
        while size and seen <= DRAIN_LIMIT:
            self.drain(size)
            seen += size
            self.rfile.readline(8)
            try:
                size = int(self.rfile.readline(1024).split(b";", 1)[0].strip() or b"0", 16)
            except ValueError:
                return
        if size == 0:
            while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                pass

    def check_auth(self):
        auth = self.server.auth
        if not auth:
            return
        header = self.headers.get("Authorization") or ""
        scheme, _, credentials = header.partition(" ")
        scheme = scheme.lower()
        credentials = credentials.strip()
        if scheme == "basic" and auth.get("basic"):
            try:
                decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                decoded = None
            if decoded == auth["basic"]:
                return
            user = decoded.split(":", 1)[0] if decoded else "?"
            reason = f"unable to authenticate user [{user}] for REST request [{self.url.path}]"
        elif scheme == "apikey" and auth.get("api_key"):
            if credentials == auth["api_key"]:
                return
            reason = "unable to authenticate with provided credentials and anonymous access is not allowed for this request"
        elif not header:
            reason = f"missing authentication credentials for REST request [{self.url.path}]"
        else:
            reason = f"unable to authenticate with provided credentials for REST request [{self.url.path}]"
        challenge = ['Basic realm="security", charset="UTF-8"', 'Bearer realm="security"', "ApiKey"]
        with self.server.store.lock:
            self.server.store.counters["unauthorized_401"] += 1
        body = error_body(401, "security_exception", reason, header={"WWW-Authenticate": challenge})
        raise HttpError(401, body, [("WWW-Authenticate", c) for c in challenge])

    def json_body(self, body, required=False):
        if not body.strip():
            if required:
                raise request_error(400, "parse_exception", "request body is required")
            return None
        self.check_content_type(body)
        try:
            return parse_json_bytes(body)
        except JsonError as e:
            raise request_error(400, "x_content_parse_exception", f"[1:{e.column}] {e.message}") from None

    def check_content_type(self, body):
        if not body:
            return
        value = self.headers.get("Content-Type")
        if value is None:
            raise simple_error(406, "Content-Type header is missing")
        if not content_type_ok(value):
            raise simple_error(406, f"Content-Type header [{value}] is not supported")

    # -- routing -----------------------------------------------------------------------------

    def route(self):
        self.url = urlsplit(self.path)
        self.query = parse_qs(self.url.query, keep_blank_values=True)
        path = self.url.path.rstrip("/") or "/"
        segments = [unquote(s) for s in path.split("/")[1:]] if path != "/" else []
        store = self.server.store
        with store.lock:
            limit = store.settings.max_body_bytes
            down = store.settings.down
            latency = store.settings.latency_ms
        test_api = bool(segments) and segments[0] == "_test"
        try:
            raw = self.read_body(limit)
        except HttpError as e:
            if e.status == 413 and not test_api:
                with store.lock:
                    store.counters["too_large_413"] += 1
            raise
        self.raw_length = len(raw)
        if test_api:
            return self.test_api(segments[1:], raw)
        with store.lock:
            store.counters["requests"] += 1
            if down:
                store.counters["down_503"] += 1
        if down:
            reason = "blocked by: [SERVICE_UNAVAILABLE/1/state not recovered / initialized];"
            raise request_error(503, "cluster_block_exception", reason)
        self.check_auth()
        body = raw
        encoding = (self.headers.get("Content-Encoding") or "identity").strip().lower()
        if encoding not in ("identity", ""):
            if encoding not in ("gzip", "x-gzip", "deflate", "x-deflate"):
                raise request_error(400, "illegal_argument_exception", f"unsupported Content-Encoding [{encoding}]")
            try:
                body = decompress(raw, encoding, limit)
            except HttpError as e:
                if e.status == 413:
                    with store.lock:
                        store.counters["too_large_413"] += 1
                raise
        return self.es_api(segments, raw, body, encoding not in ("identity", ""), latency)

    def method_not_allowed(self, allowed):
        allowed = sorted(allowed)
        raise simple_error(
            405, f"Incorrect HTTP method for uri [{self.path}] and method [{self.command}], allowed: {allowed}".replace("'", ""),
            [("Allow", ",".join(allowed))],
        )

    def es_api(self, seg, raw, body, compressed, latency):
        method = self.command
        n = len(seg)
        if n == 0:
            if method in ("GET", "HEAD"):
                return Response(200, self.info())
            self.method_not_allowed(["GET", "HEAD"])
        if seg[-1] == "_bulk" and n <= 2:
            if method not in ("POST", "PUT"):
                self.method_not_allowed(["POST", "PUT"])
            return self.bulk(seg[0] if n == 2 else None, raw, body, compressed, latency)
        if seg[-1] == "_count" and n <= 2:
            if method not in ("GET", "POST"):
                self.method_not_allowed(["GET", "POST"])
            return self.count(seg[0] if n == 2 else None, body)
        if seg[0] == "_cluster" and n >= 2 and seg[1] == "health":
            return self.health()
        if seg[0] == "_data_stream" and n <= 2:
            return self.data_stream_api(seg[1] if n == 2 else None, method)
        if seg[0] == "_index_template" and n == 2:
            return self.template_api(seg[1], method, body)
        if not seg[0].startswith("_"):
            if n == 1:
                return self.index_api(seg[0], method, body)
            if n == 2 and seg[1] == "_mapping" and method == "GET":
                return self.get_mapping(seg[0])
            if n == 3 and seg[1] == "_doc" and method in ("GET", "HEAD"):
                return self.get_doc(seg[0], seg[2])
        raise simple_error(400, f"no handler found for uri [{self.path}] and method [{method}]")

    def info(self):
        return {
            "name": NODE_NAME,
            "cluster_name": CLUSTER_NAME,
            "cluster_uuid": self.server.cluster_uuid,
            "version": {
                "number": ES_VERSION,
                "build_flavor": "default",
                "build_type": "test-double",
                "build_hash": "es_test_server",
                "build_date": "2023-11-04T10:04:57.184859352Z",
                "build_snapshot": False,
                "lucene_version": "9.8.0",
                "minimum_wire_compatibility_version": "7.17.0",
                "minimum_index_compatibility_version": "7.0.0",
            },
            "tagline": "You Know, for Search",
        }

    def health(self):
        store = self.server.store
        with store.lock:
            count = len(store.indices)
        return Response(200, {
            "cluster_name": CLUSTER_NAME, "status": "yellow" if count else "green", "timed_out": False,
            "number_of_nodes": 1, "number_of_data_nodes": 1, "active_primary_shards": count, "active_shards": count,
            "relocating_shards": 0, "initializing_shards": 0, "unassigned_shards": count, "delayed_unassigned_shards": 0,
            "number_of_pending_tasks": 0, "number_of_in_flight_fetch": 0, "task_max_waiting_in_queue_millis": 0,
            "active_shards_percent_as_number": 50.0 if count else 100.0,
        })

    def bulk(self, default_index, raw, body, compressed, latency):
        started = time.monotonic()
        store = self.server.store
        self.check_content_type(body)
        for key in self.query:
            if key not in BULK_PARAMS:
                raise request_error(
                    400, "illegal_argument_exception", f"request [{self.url.path}] contains unrecognized parameter: [{key}]"
                )
        refresh = (self.query.get("refresh") or [None])[0]
        if refresh not in (None, "", "true", "false", "wait_for"):
            raise request_error(400, "illegal_argument_exception", f"Unknown value for refresh: [{refresh}].")
        if latency:
            time.sleep(latency / 1000.0)
        with store.lock:
            counters = store.counters
            counters["bulk_requests"] += 1
            counters["bytes_received"] += len(raw)
            counters["bytes_decompressed"] += len(body)
            if compressed:
                counters["gzip_requests"] += 1
            every = store.settings.reject_every
            if every:
                store.bulk_phase += 1
                if store.bulk_phase % every == 0:
                    counters["rejected_requests_429"] += 1
                    raise request_error(
                        429, "es_rejected_execution_exception",
                        f"rejected execution of coordinating operation [coordinating_and_primary_bytes=0, replica_bytes=0, "
                        f"all_bytes=0, coordinating_operation_bytes={len(body)}, max_coordinating_and_primary_bytes=0] "
                        "(injected by reject_every)",
                    )
        actions = parse_bulk(body, default_index, self.query)
        with store.lock:
            items = BulkExecutor(store, self.query).run(actions)
            counters = store.counters
            counters["items"] += len(items)
            counters["max_items_in_a_request"] = max(counters["max_items_in_a_request"], len(items))
            by_status = counters["items_by_status"]
            for item in items:
                status = str(next(iter(item.values()))["status"])
                by_status[status] = by_status.get(status, 0) + 1
        errors = any("error" in next(iter(item.values())) for item in items)
        self.note = f" items={len(items)} errors={str(errors).lower()}"
        return Response(200, {"took": int((time.monotonic() - started) * 1000), "errors": errors, "items": items})

    def count(self, expression, body):
        parsed = self.json_body(body)
        if parsed is not None:
            query = parsed.get("query") if isinstance(parsed, dict) else None
            if not isinstance(parsed, dict) or set(parsed) - {"query"} or (query is not None and query != {"match_all": {}}):
                raise request_error(400, "illegal_argument_exception", "this Elasticsearch test double counts with match_all only")
        if "q" in self.query:
            raise request_error(400, "illegal_argument_exception", "this Elasticsearch test double counts with match_all only")
        store = self.server.store
        with store.lock:
            indices = store.resolve_read(expression)
            total = sum(len(i.docs) for i in indices)
        shards = len(indices)
        return Response(200, {"count": total, "_shards": {"total": shards, "successful": shards, "skipped": 0, "failed": 0}})

    def data_stream_api(self, name, method):
        store = self.server.store
        with store.lock:
            if method == "PUT" and name:
                problem = index_name_problem(name)
                if problem is None and name.startswith(".ds-"):
                    problem = "must not start with '.ds-'"
                if problem:
                    raise request_error(400, "invalid_index_name_exception", f"Invalid index name [{name}], {problem}",
                                        index_uuid="_na_", index=name)
                if name in store.data_streams:
                    raise request_error(400, "resource_already_exists_exception", f"data_stream [{name}] already exists")
                if name in store.indices:
                    raise request_error(400, "illegal_argument_exception", f"data stream [{name}] conflicts with index")
                store.create_data_stream(name, store.template_for(name))
                return Response(200, {"acknowledged": True})
            if method == "GET":
                names = [n for n in store.data_streams if name in (None, "*", "_all") or fnmatch.fnmatchcase(n, name)]
                if name and not is_wildcard(name) and name != "_all" and not names:
                    raise index_not_found_request(name)
                return Response(200, {"data_streams": [self.describe_stream(store.data_streams[n]) for n in names]})
            if method == "DELETE" and name:
                if name not in store.data_streams:
                    raise index_not_found_request(name)
                for backing in store.data_streams.pop(name)["indices"]:
                    store.indices.pop(backing, None)
                return Response(200, {"acknowledged": True})
        self.method_not_allowed(["GET", "PUT", "DELETE"] if name else ["GET"])

    def describe_stream(self, stream):
        store = self.server.store
        return {
            "name": stream["name"],
            "timestamp_field": {"name": "@timestamp"},
            "indices": [{"index_name": i, "index_uuid": store.indices[i].uuid} for i in stream["indices"]],
            "generation": stream["generation"],
            "status": "YELLOW",
            "template": stream["template"],
            "hidden": False,
            "system": False,
            "allow_custom_routing": False,
            "replicated": False,
        }

    def template_api(self, name, method, body):
        store = self.server.store
        if method == "PUT" or method == "POST":
            spec = self.json_body(body, required=True)
            if not isinstance(spec, dict):
                raise request_error(400, "x_content_parse_exception", "[1:1] the index template must be an object")
            patterns = spec.get("index_patterns")
            if isinstance(patterns, str):
                patterns = [patterns]
            if not patterns or not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
                raise validation_error(["index patterns are missing"])
            priority = spec.get("priority", 0)
            if isinstance(priority, bool) or not isinstance(priority, int) or priority < 0:
                raise request_error(400, "illegal_argument_exception", "priority must be a non-negative integer")
            mappings = (spec.get("template") or {}).get("mappings") if isinstance(spec.get("template"), dict) else None
            mapping = mapping_from_json(mappings, f"index template [{name}]")
            template = Template(name, patterns, priority, "data_stream" in spec, mapping, False, spec)
            with store.lock:
                store.templates[name] = template
            return Response(200, {"acknowledged": True})
        with store.lock:
            if method == "GET":
                found = [t for t in store.templates.values() if fnmatch.fnmatchcase(t.name, name)]
                if not found and not is_wildcard(name):
                    raise request_error(404, "resource_not_found_exception", f"index template matching [{name}] not found")
                return Response(200, {"index_templates": [{"name": t.name, "index_template": t.body} for t in found]})
            if method == "DELETE":
                if name not in store.templates:
                    raise request_error(404, "index_template_missing_exception", f"index_template [{name}] missing")
                del store.templates[name]
                return Response(200, {"acknowledged": True})
        self.method_not_allowed(["DELETE", "GET", "POST", "PUT"])

    def index_api(self, name, method, body):
        store = self.server.store
        if method == "PUT":
            spec = self.json_body(body)
            spec = {} if spec is None else spec
            if not isinstance(spec, dict):
                raise request_error(400, "x_content_parse_exception", "[1:1] the index body must be an object")
            problem = index_name_problem(name)
            if problem:
                raise request_error(400, "invalid_index_name_exception", f"Invalid index name [{name}], {problem}",
                                    index_uuid="_na_", index=name)
            with store.lock:
                if name in store.indices or name in store.data_streams:
                    existing = store.indices.get(name)
                    label = f"{name}/{existing.uuid}" if existing else name
                    raise request_error(400, "resource_already_exists_exception", f"index [{label}] already exists",
                                        index_uuid=existing.uuid if existing else "_na_", index=name)
                template = store.template_for(name)
                if template and template.data_stream:
                    raise request_error(
                        400, "illegal_argument_exception",
                        f"cannot create index with name [{name}], because it matches with template [{template.name}] "
                        "that creates data streams only, use create data stream api instead",
                    )
                if "mappings" in spec:
                    mapping = mapping_from_json(spec["mappings"], f"index [{name}]")
                else:
                    mapping = template.mapping if template else None
                store.indices[name] = Index(name, mapping)
            return Response(200, {"acknowledged": True, "shards_acknowledged": True, "index": name})
        if method in ("HEAD", "GET"):
            with store.lock:
                indices = store.resolve_read(name, lenient=method == "HEAD")
                if method == "HEAD":
                    return Response(200 if indices else 404)
                return Response(200, {
                    i.name: {"aliases": {}, "mappings": i.mapping.to_json(),
                             "settings": {"index": {"uuid": i.uuid, "number_of_shards": "1", "number_of_replicas": "1",
                                                    "provided_name": i.name}}}
                    for i in indices
                })
        if method == "DELETE":
            with store.lock:
                if name in store.data_streams:
                    raise request_error(
                        400, "illegal_argument_exception",
                        f"index [{name}] is a data stream; delete it with DELETE /_data_stream/{name}",
                    )
                indices = store.resolve_read(name)
                for index in indices:
                    if index.data_stream:
                        raise request_error(
                            400, "illegal_argument_exception",
                            f"index [{index.name}] is the write index for data stream [{index.data_stream}] and cannot be deleted",
                        )
                for index in indices:
                    del store.indices[index.name]
            return Response(200, {"acknowledged": True})
        self.method_not_allowed(["DELETE", "GET", "HEAD", "PUT"])

    def get_mapping(self, expression):
        store = self.server.store
        with store.lock:
            indices = store.resolve_read(expression)
            return Response(200, {i.name: {"mappings": i.mapping.to_json()} for i in indices})

    def get_doc(self, name, doc_id):
        store = self.server.store
        with store.lock:
            if name in store.data_streams:
                raise request_error(400, "illegal_argument_exception",
                                    f"get requests on data stream [{name}] must address a backing index")
            index = store.indices.get(name)
            if index is None:
                raise index_not_found_request(name)
            doc = index.docs.get(doc_id)
            if doc is None:
                return Response(404, {"_index": name, "_id": doc_id, "found": False})
            return Response(200, {
                "_index": name, "_id": doc_id, "_version": doc.version, "_seq_no": doc.seq_no, "_primary_term": 1,
                "found": True, "_source": doc.source,
            })

    # -- test API ----------------------------------------------------------------------------

    def test_api(self, seg, raw):
        store = self.server.store
        method = self.command
        what = seg[0] if len(seg) == 1 else None
        if what == "docs" and method == "GET":
            expression = (self.query.get("index") or [None])[0]
            with store.lock:
                indices = store.resolve_read(expression, lenient=True) if expression else list(store.indices.values())
                docs = sorted(((doc, index) for index in indices for doc in index.docs.values()),
                              key=lambda pair: pair[0].order)
                out = [{"index": index.name, "data_stream": index.data_stream, "id": doc.id, "version": doc.version,
                        "seq_no": doc.seq_no, "source": doc.source} for doc, index in docs]
            return Response(200, {"docs": out})
        if what == "stats" and method == "GET":
            with store.lock:
                return Response(200, json.loads(json.dumps(store.counters)))
        if what == "config" and method == "GET":
            with store.lock:
                return Response(200, store.settings.to_json())
        if what == "config" and method in ("POST", "PUT"):
            try:
                changes = parse_json_bytes(raw) if raw.strip() else {}
            except JsonError as e:
                raise request_error(400, "x_content_parse_exception", f"[1:{e.column}] {e.message}") from None
            problem = Settings.check(changes)
            if problem:
                raise request_error(400, "illegal_argument_exception", problem)
            with store.lock:
                for key, value in changes.items():
                    setattr(store.settings, key, value)
                if "reject_every" in changes:
                    store.bulk_phase = 0  # count the next N requests from now
                if "item_429_every" in changes:
                    store.item_phase = 0
                settings = store.settings.to_json()
            self.note = f" config={json.dumps(changes)}"
            return Response(200, settings)
        if what == "reset" and method == "POST":
            with store.lock:
                store.clear()
            return Response(200, {"acknowledged": True})
        raise HttpError(404, error_body(404, "resource_not_found_exception", f"no test endpoint {method} {self.url.path}"))


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        log(f"connection from {client_address} failed: {traceback.format_exc().strip().splitlines()[-1]}")


def write_port_file(path, port):
    directory = os.path.dirname(os.path.abspath(path))
    temp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    with open(temp, "w", encoding="utf-8") as f:
        f.write(f"{port}\n")
    os.replace(temp, path)


def parse_args(argv):
    p = argparse.ArgumentParser(description="Elasticsearch 8 _bulk test double (see the module docstring)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file", help="write the bound port here (atomically) once listening")
    p.add_argument("--basic", metavar="USER:PASS", help="require HTTP basic auth with these credentials")
    p.add_argument("--api-key", metavar="KEY", help="require (or also accept) 'Authorization: ApiKey KEY'")
    p.add_argument("--data-stream-pattern", action="append", default=[], metavar="GLOB",
                   help="names matching this glob become data streams when first written (repeatable)")
    p.add_argument("--no-builtin-templates", action="store_true",
                   help=f"do not treat {', '.join(BUILTIN_DATA_STREAM_PATTERNS)} as data streams "
                        "(like stack.templates.enabled: false)")
    p.add_argument("--reject-every", type=int, default=0)
    p.add_argument("--item-429-every", type=int, default=0)
    p.add_argument("--down", action="store_true")
    p.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES)
    p.add_argument("--latency-ms", type=float, default=0)
    p.add_argument("--strict-types", action="store_true")
    p.add_argument("--legacy-parsing-errors", action="store_true")
    p.add_argument("--total-fields-limit", type=int, default=1000)
    args = p.parse_args(argv)
    if args.basic is not None and ":" not in args.basic:
        p.error("--basic must be USER:PASS")
    return args


def main(argv=None):
    args = parse_args(argv)
    settings = Settings()
    changes = {
        "reject_every": args.reject_every, "item_429_every": args.item_429_every, "down": args.down,
        "max_body_bytes": args.max_body_bytes, "latency_ms": args.latency_ms, "strict_types": args.strict_types,
        "total_fields_limit": args.total_fields_limit, "legacy_parsing_errors": args.legacy_parsing_errors,
    }
    problem = Settings.check(changes)
    if problem:
        sys.exit(f"es_test_server: {problem}")
    for key, value in changes.items():
        setattr(settings, key, value)
    server = Server((args.host, args.port), Handler)
    server.store = Store(settings, args.data_stream_pattern, not args.no_builtin_templates)
    server.auth = {k: v for k, v in (("basic", args.basic), ("api_key", args.api_key)) if v}
    server.cluster_uuid = generate_uuid()
    port = server.server_address[1]
    if args.port_file:
        write_port_file(args.port_file, port)
    log(f"listening on http://{args.host}:{port} settings={json.dumps(settings.to_json())}")
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
