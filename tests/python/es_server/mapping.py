"""Mappings: field types, index/template mappings from JSON, and the document parser that checks
a document against a mapping and adds dynamic fields (coercion, conflicts, limits)."""

import decimal
import math
import re
import sys

from .common import (
    DATE_TYPES, DEFAULT_DATE_FORMAT, FLOAT_TYPES, LONG_RANGES, MAPPING_DEPTH_LIMIT, NUMBER_TEXT, OBJECT_TYPES,
    OPAQUE_TYPES, STRING_TYPES,
)
from .errors import ItemFailure, error_cause, request_error
from .values import date_matches, detect_date, preview, token_name, type_family, value_family


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


def data_stream_mapping(base):
    mapping = base.copy() if base else Mapping()
    mapping.fields.setdefault("@timestamp", FieldType("date", DEFAULT_DATE_FORMAT))
    return mapping
