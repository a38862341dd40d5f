"""The HTTP request handler: one line of log per request, body reading (Content-Length and
chunked, with the size limit), authentication, Content-Type checks, error answers and routing to
the Elasticsearch endpoints (es_api) and the test endpoints (control_api)."""

import base64
import json
import sys
import time
import traceback
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, unquote, urlsplit

from .common import DRAIN_LIMIT, log
from .control_api import ControlApiMixin
from .errors import HttpError, error_body, request_error, simple_error
from .es_api import EsApiMixin
from .filter_path import filter_path
from .http_util import Response, content_type_ok, decompress
from .values import JsonError, parse_json_bytes, truthy


class Handler(EsApiMixin, ControlApiMixin, BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "es-test-server"
    sys_version = ""
    timeout = 120  # idle keep-alive connections are dropped after this

    # The server object carries: store, auth (dict), and nothing else.

    def log_message(self, format, *args):  # noqa: A002 - BaseHTTPRequestHandler's signature
        log(f"{self.address_string()} {format % args}")

    def log_request(self, code="-", size="-"):
        pass  # dispatch() logs one line per request itself

    def do_GET(self):
        self.dispatch()

    def do_HEAD(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def do_PUT(self):
        self.dispatch()

    def do_DELETE(self):
        self.dispatch()

    def do_PATCH(self):
        self.dispatch()

    def do_OPTIONS(self):
        self.dispatch()

    def handle_expect_100(self):
        length = self.headers.get("Content-Length")
        if length and length.isdigit() and int(length) > self.server.store.settings.max_body_bytes:
            self.close_connection = True
            if not self.path.startswith("/_test/"):
                with self.server.store.lock:
                    self.server.store.counters["too_large_413"] += 1
            self.send_response(413)
            self.send_header("Content-Length", "0")
            self.send_header("Connection", "close")
            self.end_headers()
            log(f"{self.command} {self.path} -> 413 (Expect: 100-continue refused)")
            return False
        return super().handle_expect_100()

    def dispatch(self):
        started = time.monotonic()
        self.note = ""
        self.raw_length = 0
        self.drop_response = False
        self.auth_user = "elastic"
        try:
            response = self.route()
        except HttpError as e:
            response = Response(e.status, e.body, e.headers, e.close)
        except Exception as e:  # never let one request take the server down
            traceback.print_exc(file=sys.stderr)
            response = Response(500, error_body(500, "exception", f"es_test_server internal error: {type(e).__name__}: {e}"))
        if self.drop_response:
            self.close_connection = True
            log(f"{self.command} {self.path} -> {response.status} in={self.raw_length}B answer withheld "
                f"(drop_response_next), connection closed{self.note}")
            return
        try:
            sent = self.send(response)
        except OSError as e:
            self.close_connection = True
            self.note += f" (client gone: {e})"
            sent = 0
        elapsed = (time.monotonic() - started) * 1000
        log(
            f"{self.command} {self.path} -> {response.status} in={self.raw_length}B out={sent}B "
            f"{elapsed:.1f}ms{self.note}"
        )

    def send(self, response):
        if response.body is None:
            payload = b""
        elif isinstance(response.body, bytes):
            payload = response.body
        else:
            pretty = truthy(self.query.get("pretty")) if hasattr(self, "query") else False
            body = response.body
            spec = (self.query.get("filter_path") or [None])[0] if hasattr(self, "query") else None
            if spec and 200 <= response.status < 300 and isinstance(body, dict):
                body = filter_path(body, spec)
            text = json.dumps(body, ensure_ascii=False, indent=2 if pretty else None,
                              separators=None if pretty else (",", ":"))
            payload = (text + ("\n" if pretty else "")).encode("utf-8")
        self.send_response(response.status)
        if response.body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("X-elastic-product", "Elasticsearch")
        for name, value in response.headers:
            self.send_header(name, value)
        if response.close:
            self.close_connection = True
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and payload:
            self.wfile.write(payload)
        return len(payload)

    # -- request plumbing --------------------------------------------------------------------

    def read_body(self, limit):
        """The raw body; raises 413 (and closes the connection) when it is larger than `limit`."""
        encoding = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in encoding:
            out = bytearray()
            while True:
                size_line = self.rfile.readline(1024)
                if not size_line:
                    raise HttpError(400, {"error": "truncated chunked body", "status": 400}, close=True)
                try:
                    size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                except ValueError:
                    raise HttpError(400, {"error": "invalid chunk size in chunked body", "status": 400}, close=True) from None
                if size == 0:
                    while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                if len(out) + size > limit:
                    self.drain_chunks(size, len(out))
                    raise HttpError(413, None, close=True)
                out += self.rfile.read(size)
                self.rfile.readline(8)
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        if not length.strip().isdigit():
            raise HttpError(400, {"error": f"invalid Content-Length [{length}]", "status": 400}, close=True)
        length = int(length)
        if length > limit:
            if length <= DRAIN_LIMIT:
                self.drain(length)
            raise HttpError(413, None, close=True)
        data = self.rfile.read(length)
        if len(data) != length:
            raise HttpError(400, {"error": "truncated body", "status": 400}, close=True)
        return data

    def drain(self, length):
        while length > 0:
            chunk = self.rfile.read(min(length, 65536))
            if not chunk:
                return
            length -= len(chunk)

    def drain_chunks(self, size, seen):
        """Reads and drops the rest of a chunked body (bounded by DRAIN_LIMIT)."""
        while size and seen <= DRAIN_LIMIT:
            self.drain(size)
            seen += size
            self.rfile.readline(8)
            try:
                size = int(self.rfile.readline(1024).split(b";", 1)[0].strip() or b"0", 16)
            except ValueError:
                return
        if size == 0:
            while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                pass

    def check_auth(self):
        auth = self.server.auth
        if not auth:
            return
        header = self.headers.get("Authorization") or ""
        scheme, _, credentials = header.partition(" ")
        scheme = scheme.lower()
        credentials = credentials.strip()
        if scheme == "basic" and auth.get("basic"):
            try:
                decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                decoded = None
            if decoded == auth["basic"]:
                self.auth_user = decoded.split(":", 1)[0]
                return
            user = decoded.split(":", 1)[0] if decoded else "?"
            reason = f"unable to authenticate user [{user}] for REST request [{self.url.path}]"
        elif scheme == "apikey" and auth.get("api_key"):
            if credentials == auth["api_key"]:
                return
            reason = "unable to authenticate with provided credentials and anonymous access is not allowed for this request"
        elif not header:
            reason = f"missing authentication credentials for REST request [{self.url.path}]"
        else:
            reason = f"unable to authenticate with provided credentials for REST request [{self.url.path}]"
        challenge = ['Basic realm="security", charset="UTF-8"', 'Bearer realm="security"', "ApiKey"]
        with self.server.store.lock:
            self.server.store.counters["unauthorized_401"] += 1
        body = error_body(401, "security_exception", reason, header={"WWW-Authenticate": challenge})
        raise HttpError(401, body, [("WWW-Authenticate", c) for c in challenge])

    def json_body(self, body, required=False):
        if not body.strip():
            if required:
                raise request_error(400, "parse_exception", "request body is required")
            return None
        self.check_content_type(body)
        try:
            return parse_json_bytes(body)
        except JsonError as e:
            raise request_error(400, "x_content_parse_exception", f"[1:{e.column}] {e.message}") from None

    def check_content_type(self, body):
        if not body:
            return
        value = self.headers.get("Content-Type")
        if value is None:
            raise simple_error(406, "Content-Type header is missing")
        if not content_type_ok(value):
            raise simple_error(406, f"Content-Type header [{value}] is not supported")

    # -- routing -----------------------------------------------------------------------------

    def route(self):
        self.url = urlsplit(self.path)
        self.query = parse_qs(self.url.query, keep_blank_values=True)
        path = self.url.path.rstrip("/") or "/"
        segments = [unquote(s) for s in path.split("/")[1:]] if path != "/" else []
        store = self.server.store
        with store.lock:
            limit = store.settings.max_body_bytes
            down = store.settings.down
            latency = store.settings.latency_ms
        test_api = bool(segments) and segments[0] == "_test"
        try:
            raw = self.read_body(limit)
        except HttpError as e:
            if e.status == 413 and not test_api:
                with store.lock:
                    store.counters["too_large_413"] += 1
            raise
        self.raw_length = len(raw)
        if test_api:
            return self.test_api(segments[1:], raw)
        if self.server.control_only:
            raise HttpError(404, error_body(404, "resource_not_found_exception",
                                            "the control listener serves /_test/ only; use a node's port"))
        with store.lock:
            store.counters["requests"] += 1
            if down:
                store.counters["down_503"] += 1
        if down:
            reason = "blocked by: [SERVICE_UNAVAILABLE/1/state not recovered / initialized];"
            raise request_error(503, "cluster_block_exception", reason)
        self.check_auth()
        body = raw
        encoding = (self.headers.get("Content-Encoding") or "identity").strip().lower()
        if encoding not in ("identity", ""):
            if encoding not in ("gzip", "x-gzip", "deflate", "x-deflate"):
                raise request_error(400, "illegal_argument_exception", f"unsupported Content-Encoding [{encoding}]")
            try:
                body = decompress(raw, encoding, limit)
            except HttpError as e:
                if e.status == 413:
                    with store.lock:
                        store.counters["too_large_413"] += 1
                raise
        return self.es_api(segments, raw, body, encoding not in ("identity", ""), latency)

    def method_not_allowed(self, allowed):
        allowed = sorted(allowed)
        raise simple_error(
            405, f"Incorrect HTTP method for uri [{self.path}] and method [{self.command}], allowed: {allowed}".replace("'", ""),
            [("Allow", ",".join(allowed))],
        )

    def es_api(self, seg, raw, body, compressed, latency):
        method = self.command
        n = len(seg)
        if n == 0:
            if method in ("GET", "HEAD"):
                return Response(200, self.info())
            self.method_not_allowed(["GET", "HEAD"])
        if seg[-1] == "_bulk" and n <= 2:
            if method not in ("POST", "PUT"):
                self.method_not_allowed(["POST", "PUT"])
            return self.bulk(seg[0] if n == 2 else None, raw, body, compressed, latency)
        if seg[-1] == "_count" and n <= 2:
            if method not in ("GET", "POST"):
                self.method_not_allowed(["GET", "POST"])
            return self.count(seg[0] if n == 2 else None, body)
        if seg[0] == "_cluster" and n >= 2 and seg[1] == "health":
            return self.health()
        if seg[0] == "_data_stream" and n <= 2:
            return self.data_stream_api(seg[1] if n == 2 else None, method)
        if seg[0] == "_index_template" and n == 2:
            return self.template_api(seg[1], method, body)
        if seg[0] == "_ilm" and n == 3 and seg[1] == "policy":
            return self.ilm_policy_api(seg[2], method, body)
        if seg[0] == "_ingest" and n == 3 and seg[1] == "pipeline":
            return self.pipeline_api(seg[2], method, body)
        if not seg[0].startswith("_"):
            if n == 1:
                return self.index_api(seg[0], method, body)
            if n == 2 and seg[1] == "_rollover":
                return self.rollover(seg[0], method, body)
            if n == 2 and seg[1] == "_settings":
                return self.index_settings(seg[0], method, body)
            if n == 2 and seg[1] == "_mapping" and method == "GET":
                return self.get_mapping(seg[0])
            if n == 3 and seg[1] == "_doc" and method in ("GET", "HEAD"):
                return self.get_doc(seg[0], seg[2])
        raise simple_error(400, f"no handler found for uri [{self.path}] and method [{method}]")
