"""Fault-injection settings, set from the command line and changed by POST /_test/config."""

from .common import DEFAULT_MAX_BODY_BYTES


class Settings:
    """Fault-injection settings; changed by the command line and by POST /_test/config."""

    INT_KEYS = (
        "reject_every", "item_429_every", "item_500_every", "item_503_every", "drop_response_next",
        "max_body_bytes", "total_fields_limit",
    )
    FLOAT_KEYS = ("latency_ms",)
    BOOL_KEYS = ("down", "strict_types", "legacy_parsing_errors")
    # Lists of index name globs.
    GLOB_LIST_KEYS = ("forbidden_indices",)

    def __init__(self):
        self.reject_every = 0
        self.item_429_every = 0
        self.item_500_every = 0
        self.item_503_every = 0
        self.drop_response_next = 0
        self.forbidden_indices = []
        self.down = False
        self.max_body_bytes = DEFAULT_MAX_BODY_BYTES
        self.latency_ms = 0
        self.strict_types = False
        self.legacy_parsing_errors = False
        self.total_fields_limit = 1000

    def to_json(self):
        keys = self.INT_KEYS + self.FLOAT_KEYS + self.BOOL_KEYS + self.GLOB_LIST_KEYS
        return {k: (list(v) if isinstance(v := getattr(self, k), list) else v) for k in keys}

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
            elif key in cls.GLOB_LIST_KEYS:
                if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                    return f"[{key}] must be a list of index name patterns"
            else:
                known = sorted(cls.INT_KEYS + cls.FLOAT_KEYS + cls.BOOL_KEYS + cls.GLOB_LIST_KEYS)
                return f"unknown setting [{key}]; known: {known}"
        return None
