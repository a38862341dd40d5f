"""The store: indices and their documents, data streams, index templates and the request
counters, with name resolution for writes and reads. One lock guards all of it."""

import datetime
import fnmatch
import threading

from .common import BUILTIN_DATA_STREAM_PATTERNS
from .errors import ItemFailure, index_not_found, index_not_found_request
from .mapping import Mapping, data_stream_mapping
from .names import index_name_problem, invalid_index_name, is_wildcard
from .values import generate_uuid


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
        self.blocks_write = False  # index.blocks.write

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
        self.pipelines = {}  # id -> definition ({"description", "processors": [...]})
        self.ilm_policies = {}  # name -> {"version", "modified_date", "policy"}
        self.counters = self.new_counters()
        self.bulk_phase = 0
        self.item_phase = 0
        self.item_500_phase = 0
        self.item_503_phase = 0
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
            "bulk_requests_by_node": {},  # node number -> bulk requests it served
            "injected_items_500": 0,  # items failed by item_500_every
            "injected_items_503": 0,  # items failed by item_503_every
            "forbidden_items_403": 0,  # items refused by forbidden_indices (security_exception)
            "blocked_items_403": 0,  # items refused by an index.blocks.write block (cluster_block_exception)
            "dropped_responses": 0,  # bulk requests executed whose answer drop_response_next withheld
            "dropped_items": 0,  # items of those requests
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

    def rollover(self, name):
        """A new write index for data stream `name`: (old, new) backing index names."""
        stream = self.data_streams[name]
        stream["generation"] += 1
        day = datetime.datetime.now(datetime.timezone.utc).strftime("%Y.%m.%d")
        template = self.template_for(name)
        backing = Index(
            f".ds-{name}-{day}-{stream['generation']:06d}", data_stream_mapping(template.mapping if template else None), name
        )
        self.indices[backing.name] = backing
        old = stream["indices"][-1]
        stream["indices"].append(backing.name)
        return old, backing.name

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
