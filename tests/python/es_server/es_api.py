"""The Elasticsearch endpoints of the request handler: cluster info and health, _bulk, _count,
indices, mappings, documents, data streams and index templates."""

import fnmatch
import time

from .bulk_exec import BulkExecutor
from .bulk_parse import parse_bulk
from .common import BULK_PARAMS, CLUSTER_NAME, ES_VERSION, NODE_NAME
from .errors import index_not_found_request, request_error, validation_error
from .http_util import Response
from .mapping import mapping_from_json
from .names import index_name_problem, is_wildcard
from .store import Index, Template


class EsApiMixin:
    """Elasticsearch API methods of Handler (they use its server, query, url and body helpers)."""

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
            node = str(self.server.node_number)
            store.counters["bulk_requests_by_node"][node] = store.counters["bulk_requests_by_node"].get(node, 0) + 1
            items = BulkExecutor(store, self.query, self.auth_user).run(actions)
            counters = store.counters
            if store.settings.drop_response_next:
                # Written, but the answer never reaches the client (a node dying, a proxy timing
                # out): the client cannot tell and has to send the same documents again.
                store.settings.drop_response_next -= 1
                counters["dropped_responses"] += 1
                counters["dropped_items"] += len(items)
                self.drop_response = True
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

    def rollover(self, name, method, body):
        """POST /{data stream}/_rollover: a new backing index becomes the write index."""
        if method != "POST":
            self.method_not_allowed(["POST"])
        spec = self.json_body(body)
        if spec is not None:
            if not isinstance(spec, dict) or set(spec) - {"conditions"} or spec.get("conditions"):
                raise request_error(400, "illegal_argument_exception",
                                    "this Elasticsearch test double rolls over unconditionally only")
        store = self.server.store
        with store.lock:
            if name not in store.data_streams:
                if name in store.indices:
                    raise request_error(400, "illegal_argument_exception",
                                        f"rollover target [{name}] does not point to an alias or data stream")
                raise index_not_found_request(name)
            old, new = store.rollover(name)
        self.note = f" rollover {old} -> {new}"
        return Response(200, {
            "acknowledged": True, "shards_acknowledged": True, "old_index": old, "new_index": new,
            "rolled_over": True, "dry_run": False, "lazy": False, "conditions": {},
        })

    def index_settings(self, expression, method, body):
        """GET|PUT /{index}/_settings; of the dynamic settings only index.blocks.write can be changed."""
        store = self.server.store
        if method == "PUT":
            spec = self.json_body(body, required=True)
            if not isinstance(spec, dict):
                raise request_error(400, "x_content_parse_exception", "[1:1] the settings must be an object")
            flat = {}

            def flatten(prefix, value):
                if isinstance(value, dict):
                    for key, inner in value.items():
                        flatten(f"{prefix}.{key}" if prefix else key, inner)
                else:
                    flat[prefix if prefix.startswith("index.") else f"index.{prefix}"] = value

            flatten("", spec.get("settings", spec) if isinstance(spec.get("settings"), dict) else spec)
            unknown = sorted(set(flat) - {"index.blocks.write"})
            if unknown:
                raise request_error(400, "illegal_argument_exception",
                                    f"this Elasticsearch test double changes only index.blocks.write, not {unknown}")
            value = flat["index.blocks.write"]
            if value not in (True, False, None, "true", "false"):
                raise request_error(400, "illegal_argument_exception",
                                    f"Failed to parse value [{value}] as only [true] or [false] are allowed.")
            with store.lock:
                for index in store.resolve_read(expression):
                    index.blocks_write = value in (True, "true")
            return Response(200, {"acknowledged": True})
        if method == "GET":
            with store.lock:
                return Response(200, {
                    i.name: {"settings": {"index": {
                        "uuid": i.uuid, "number_of_shards": "1", "number_of_replicas": "1", "provided_name": i.name,
                        **({"blocks": {"write": "true"}} if i.blocks_write else {}),
                    }}}
                    for i in store.resolve_read(expression)
                })
        self.method_not_allowed(["GET", "PUT"])

    def describe_stream(self, stream):
        store = self.server.store
        return {
            "name": stream["name"],
            "timestamp_field": {"name": "@timestamp"},
            "indices": [{"index_name": i, "index_uuid": store.indices[i].uuid} for i in stream["indices"]],
            "generation": stream["generation"],
            "status": "YELLOW",
            "template": stream["template"],
            "ilm_policy": self.stream_policy(stream),
            "hidden": False,
            "system": False,
            "allow_custom_routing": False,
            "replicated": False,
        }

    def stream_policy(self, stream):
        """The ILM policy a data stream's template names (`index.lifecycle.name`), if any."""
        template = self.server.store.templates.get(stream["template"] or "")
        settings = ((template.body.get("template") or {}).get("settings") or {}) if template else {}
        index = settings.get("index") if isinstance(settings.get("index"), dict) else {}
        lifecycle = index.get("lifecycle") if isinstance(index.get("lifecycle"), dict) else {}
        return settings.get("index.lifecycle.name") or lifecycle.get("name")

    def ilm_policy_api(self, name, method, body):
        """PUT|GET|DELETE /_ilm/policy/{name}: policies are kept as given (phases are checked for
        shape, never executed); each PUT bumps the version, as in Elasticsearch."""
        store = self.server.store
        if method == "PUT":
            spec = self.json_body(body, required=True)
            policy = spec.get("policy") if isinstance(spec, dict) else None
            if not isinstance(policy, dict) or set(spec) != {"policy"}:
                raise request_error(400, "x_content_parse_exception", "[1:1] [put_lifecycle_request] a [policy] object is required")
            phases = policy.get("phases")
            if not isinstance(phases, dict) or any(
                p not in ("hot", "warm", "cold", "frozen", "delete") or not isinstance(v, dict) for p, v in phases.items()
            ):
                raise request_error(400, "x_content_parse_exception", "[policy] [phases] must map hot, warm, cold, frozen or delete to objects")
            with store.lock:
                version = store.ilm_policies.get(name, {}).get("version", 0) + 1
                store.ilm_policies[name] = {"version": version, "modified_date": "2026-01-01T00:00:00.000Z", "policy": policy}
            return Response(200, {"acknowledged": True})
        with store.lock:
            if method == "GET":
                found = {k: v for k, v in store.ilm_policies.items() if fnmatch.fnmatchcase(k, name)}
                if not found:
                    raise request_error(404, "resource_not_found_exception", f"Lifecycle policy not found: {name}")
                return Response(200, found)
            if method == "DELETE":
                if name not in store.ilm_policies:
                    raise request_error(404, "resource_not_found_exception", f"Lifecycle policy not found: {name}")
                del store.ilm_policies[name]
                return Response(200, {"acknowledged": True})
        self.method_not_allowed(["DELETE", "GET", "PUT"])

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

    def pipeline_api(self, name, method, body):
        """PUT|GET|DELETE /_ingest/pipeline/{id}. Definitions are kept as given; of their
        processors only `set` runs (see bulk_exec.run_pipeline)."""
        store = self.server.store
        if method == "PUT":
            spec = self.json_body(body, required=True)
            processors = spec.get("processors") if isinstance(spec, dict) else None
            if not isinstance(processors, list):
                raise request_error(400, "parse_exception", "[processors] required property is missing")
            with store.lock:
                store.pipelines[name] = spec
            return Response(200, {"acknowledged": True})
        with store.lock:
            if method == "GET":
                found = {k: v for k, v in store.pipelines.items() if fnmatch.fnmatchcase(k, name)}
                if not found:
                    return Response(404, {})
                return Response(200, found)
            if method == "DELETE":
                if name not in store.pipelines:
                    raise request_error(404, "resource_not_found_exception", f"pipeline [{name}] is missing")
                del store.pipelines[name]
                return Response(200, {"acknowledged": True})
        self.method_not_allowed(["DELETE", "GET", "PUT"])

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
