"""The /_test/ endpoints of the request handler: stored documents, counters, fault-injection
settings and reset. They never need auth and work while the server is `down`."""

import json

from .errors import HttpError, error_body, request_error
from .http_util import Response
from .settings import Settings
from .values import JsonError, parse_json_bytes


class ControlApiMixin:
    """The /_test/ API methods of Handler."""

    def test_api(self, seg, raw):
        store = self.server.store
        method = self.command
        what = seg[0] if len(seg) == 1 else None
        if what == "docs" and method == "GET":
            expression = (self.query.get("index") or [None])[0]
            with store.lock:
                indices = store.resolve_read(expression, lenient=True) if expression else list(store.indices.values())
                docs = sorted(((doc, index) for index in indices for doc in index.docs.values()),
                              key=lambda pair: pair[0].order)
                out = [{"index": index.name, "data_stream": index.data_stream, "id": doc.id, "version": doc.version,
                        "seq_no": doc.seq_no, "source": doc.source} for doc, index in docs]
            return Response(200, {"docs": out})
        if what == "stats" and method == "GET":
            with store.lock:
                return Response(200, json.loads(json.dumps(store.counters)))
        if what == "config" and method == "GET":
            with store.lock:
                return Response(200, store.settings.to_json())
        if what == "config" and method in ("POST", "PUT"):
            try:
                changes = parse_json_bytes(raw) if raw.strip() else {}
            except JsonError as e:
                raise request_error(400, "x_content_parse_exception", f"[1:{e.column}] {e.message}") from None
            problem = Settings.check(changes)
            if problem:
                raise request_error(400, "illegal_argument_exception", problem)
            with store.lock:
                for key, value in changes.items():
                    setattr(store.settings, key, value)
                if "reject_every" in changes:
                    store.bulk_phase = 0  # count the next N requests from now
                if "item_429_every" in changes:
                    store.item_phase = 0
                settings = store.settings.to_json()
            self.note = f" config={json.dumps(changes)}"
            return Response(200, settings)
        if seg and seg[0] == "nodes":
            return self.nodes_api(seg[1:], method)
        if what == "reset" and method == "POST":
            with store.lock:
                store.clear()
            return Response(200, {"acknowledged": True})
        raise HttpError(404, error_body(404, "resource_not_found_exception", f"no test endpoint {method} {self.url.path}"))

    def nodes_api(self, seg, method):
        """GET /_test/nodes; POST /_test/nodes/{n}/stop|start (refused connections, then back)."""
        nodes = self.server.nodes
        if not seg and method == "GET":
            return Response(200, {"nodes": [node.describe() for node in nodes]})
        if len(seg) == 2 and method == "POST" and seg[1] in ("stop", "start") and seg[0].isdigit():
            number = int(seg[0])
            if number >= len(nodes):
                raise request_error(404, "resource_not_found_exception", f"no node [{number}] (there are {len(nodes)})")
            if self.server.node_number == number:
                raise request_error(400, "illegal_argument_exception", "a node cannot stop itself; use the control port")
            node = nodes[number]
            if seg[1] == "stop":
                node.stop()
            else:
                try:
                    node.start()
                except OSError as e:
                    raise request_error(500, "bind_exception", f"port {node.port} could not be bound again: {e}") from None
            self.note = f" node {number} {seg[1]}"
            return Response(200, node.describe())
        raise HttpError(404, error_body(404, "resource_not_found_exception", f"no test endpoint {method} {self.url.path}"))
