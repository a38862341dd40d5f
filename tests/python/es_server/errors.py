"""Errors in Elasticsearch's shapes: whole-request failures (HttpError and the helpers that build
its body) and failures of one bulk item (ItemFailure), plus the pre-8.8 form of parsing errors."""

import re


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


def legacy_error(error):
    """A document parsing failure as Elasticsearch 7.x to 8.7 reported it."""
    if error["type"] not in ("document_parsing_exception", "strict_dynamic_mapping_exception"):
        return error
    error = dict(error)
    if error["type"] == "document_parsing_exception":
        error["type"] = "mapper_parsing_exception"
    error["reason"] = re.sub(r"^\[\d+:\d+\] ", "", error["reason"])
    return error
