"""Elasticsearch's filter_path response filtering (include and exclude patterns, `*` and `**`)."""

import fnmatch


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
