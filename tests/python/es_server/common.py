"""Constants shared by the server's modules (version, limits, field type families, date patterns)
and the stderr logger."""

import re
import sys
import time


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
