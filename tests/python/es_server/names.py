"""Index names: Elasticsearch's naming rules and wildcard expressions."""

from .common import INVALID_NAME_CHARS, INVALID_NAME_CHARS_TEXT
from .errors import ItemFailure


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
