"""Parsing a `_bulk` request: the NDJSON body split into actions, with the request-level
validation Elasticsearch does before any item runs."""

from .common import ACTION_PARAMS, MAX_ID_BYTES
from .errors import request_error, validation_error
from .values import JsonError, generate_id, parse_json_bytes, token_name


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
