"""Executing parsed bulk actions against the store: index, create, update and delete, with
concurrency control, data stream rules, mapping updates and per-item fault injection."""

import fnmatch
import json

from .common import NOOP_SHARDS, SHARDS
from .errors import ItemFailure, error_cause, legacy_error
from .mapping import DocumentParser
from .store import Doc
from .values import JsonError, merge, parse_json, truthy

# Mapper metadata fields of Elasticsearch 8: a document holding one at its top level is refused.
METADATA_FIELDS = frozenset((
    "_id", "_index", "_source", "_routing", "_version", "_seq_no", "_primary_term", "_ignored",
    "_field_names", "_doc_count", "_tier", "_data_stream_timestamp", "_nested_path", "_feature",
))


def ok_item(index, doc_id, version, result, status, seq_no, shards=SHARDS):
    return {
        "_index": index.name, "_id": doc_id, "_version": version, "result": result, "_shards": dict(shards),
        "_seq_no": seq_no, "_primary_term": 1, "status": status,
    }


class BulkExecutor:
    """Runs parsed bulk actions against the store; the caller holds the store's lock."""

    def __init__(self, store, query, user="elastic"):
        self.store = store
        self.settings = store.settings
        self.require_alias = truthy(query.get("require_alias"))
        self.pipeline = None  # the ingest pipeline of the item being executed
        self.user = user

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
        self.inject_shard_failure()
        if any(fnmatch.fnmatchcase(action.index, p) for p in self.settings.forbidden_indices):
            # The user's roles grant no write privilege on this name: refused before the index is
            # resolved or auto-created, as Elasticsearch's authorization does.
            store.counters["forbidden_items_403"] += 1
            raise ItemFailure(
                403, "security_exception",
                f"action [indices:data/write/bulk[s]] is unauthorized for user [{self.user}] with effective roles "
                f"[millrace_writer] on indices [{action.index}], this action is granted by the index privileges "
                "[create_doc,create,index,write,all]",
            )
        if self.require_alias or truthy(action.params.get("require_alias")):
            raise ItemFailure(
                404, "index_not_found_exception",
                f"no such index [{action.index}] and [require_alias] request flag is [true] and [{action.index}] is not an alias",
                index_uuid="_na_", index=action.index,
            )
        pipeline = action.params.get("pipeline")
        if pipeline is not None and pipeline != "_none" and pipeline not in store.pipelines:
            raise ItemFailure(400, "illegal_argument_exception", f"pipeline with id [{pipeline}] does not exist")
        self.pipeline = None if pipeline == "_none" else pipeline
        auto_create = action.op in ("index", "create") or (
            action.op == "update" and ("upsert" in action.update or action.update.get("doc_as_upsert"))
        )
        index, is_stream = store.resolve_for_write(action.index, auto_create)
        self.check_data_stream_rules(action, index, is_stream)
        self.resolved = index.name
        if index.blocks_write:
            store.counters["blocked_items_403"] += 1
            raise ItemFailure(403, "cluster_block_exception", f"index [{index.name}] blocked by: [FORBIDDEN/8/index write (api)];")
        if action.op == "delete":
            return self.delete(action, index)
        if action.op == "update":
            return self.update(action, index)
        return self.write(action, index)

    def inject_shard_failure(self):
        """item_500_every and item_503_every: the item fails on its shard (nothing is written)."""
        store = self.store
        if self.settings.item_503_every:
            store.item_503_phase += 1
            if store.item_503_phase % self.settings.item_503_every == 0:
                store.counters["injected_items_503"] += 1
                raise ItemFailure(
                    503, "unavailable_shards_exception",
                    f"[{self.resolved}][0] primary shard is not active Timeout: [1m] (injected by item_503_every)",
                )
        if self.settings.item_500_every:
            store.item_500_phase += 1
            if store.item_500_phase % self.settings.item_500_every == 0:
                store.counters["injected_items_500"] += 1
                raise ItemFailure(500, "exception", "shard failure while indexing (injected by item_500_every)")

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

    def run_pipeline(self, name, source):
        """Runs the ingest pipeline `name` on a document: `set` processors (`field` as a dotted
        path, `value` a literal; `{{{_ingest.pipeline}}}`-style templates are not expanded) are
        applied, every other processor is accepted and skipped, a deviation the module doc names."""
        if not isinstance(source, dict):
            return json.dumps(source), source
        for processor in self.store.pipelines[name].get("processors", []):
            spec = processor.get("set") if isinstance(processor, dict) else None
            if not isinstance(spec, dict) or not isinstance(spec.get("field"), str):
                continue
            target = source
            *parents, leaf = spec["field"].split(".")
            for part in parents:
                target = target.setdefault(part, {})
                if not isinstance(target, dict):
                    raise ItemFailure(400, "illegal_argument_exception", f"cannot set [{spec['field']}]: [{part}] is not an object")
            target[leaf] = spec.get("value")
        return json.dumps(source), source

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
        if isinstance(source, dict):
            for field in source:
                if field in METADATA_FIELDS:
                    # Elasticsearch 8 refuses these as document fields (they are request metadata).
                    column = text.find(f'"{field}"') + len(field) + 3
                    raise ItemFailure(
                        400, "document_parsing_exception",
                        f"[1:{column}] Field [{field}] is a metadata field and cannot be added inside a document. "
                        "Use the index API request parameters.",
                    )
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
        if self.pipeline is not None:
            raw, source = self.run_pipeline(self.pipeline, source)
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
