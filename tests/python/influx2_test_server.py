#!/usr/bin/env python3
"""A contract test server for InfluxDB 2's write API (`POST /api/v2/write`).

Why it exists: the InfluxDB packages reachable where millrace's tests run are 1.x (1.6 has no
/api/v2/write), and no InfluxDB 2 package is, so the sink's `api = "v2"` is tested against this
server instead. It follows the documented behaviour of InfluxDB OSS 2.x's write endpoint:

    POST /api/v2/write?org=ORG&bucket=BUCKET&precision=ns|us|ms|s   (default ns)
      Authorization: Token TOKEN (or Bearer TOKEN); body: line protocol, optionally gzip
    204  every point written
    400  {"code":"invalid", ...}: an unknown precision, a missing org, or a line that does not
         parse ("unable to parse '<line>': <why>"); nothing of the request is written
    401  {"code":"unauthorized","message":"unauthorized access"}: no or a wrong token
    404  {"code":"not found", ...}: an unknown organization or bucket
    413  {"code":"request too large", ...}: a (decompressed) body over --max-body-bytes
    422  {"code":"unprocessable entity","message":"failure writing points to database: partial write:
         field type conflict: ... dropped=N"}: points whose field type conflicts with the bucket's
         schema are dropped, the others are written (a partial write)
    429, 503  with Retry-After, when injected (throttle_next, unavailable_next)
    GET /health, GET /ping

Points are unique by bucket, measurement, tag set and time; writing one again replaces its
fields, as InfluxDB does.

Test endpoints (no token needed):
    GET  /_test/points[?bucket=B]  {"points": [{"bucket","measurement","tags","fields","time_ns"}]}
    GET  /_test/stats              counters (requests_by_status, points_written, points_dropped, ...)
    POST /_test/config             {"throttle_next": N, "unavailable_next": N, "retry_after": S,
                                    "max_body_bytes": N}

    python3 tests/python/influx2_test_server.py --port 0 --port-file PATH --org ORG \\
        --bucket BUCKET [--bucket ...] --token TOKEN [--max-body-bytes N]

Deviations, on purpose: bodies need a Content-Length (no chunked encoding), no query API, no retention, escapes in measurement/tag/field names are
kept as written; the line protocol parser checks the structure and the value types, not every
corner of the grammar.
"""

import argparse
import gzip
import json
import os
import re
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

DRAIN_LIMIT = 64 * 1024 * 1024
PRECISION_NS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
INTEGER = re.compile(r"^[+-]?\d+i$")
UINTEGER = re.compile(r"^\d+u$")
FLOAT = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$")
BOOLEANS = {"t": True, "T": True, "true": True, "True": True, "TRUE": True,
            "f": False, "F": False, "false": False, "False": False, "FALSE": False}


class Refused(Exception):
    def __init__(self, status, code, message, headers=()):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, list(headers)


def split_unescaped(text, separator):
    """Splits on `separator` outside double quotes and not preceded by a backslash."""
    parts, current, quoted, escaped = [], [], False, False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            current.append(char)
            escaped = True
        elif char == '"':
            current.append(char)
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if quoted:
        raise ValueError("unbalanced quotes")
    parts.append("".join(current))
    return parts


def field_value(raw):
    """(type, value) of a field value in line protocol."""
    if raw.startswith('"'):
        if len(raw) < 2 or not raw.endswith('"'):
            raise ValueError(f"invalid string field value {raw!r}")
        return "string", raw[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    if INTEGER.match(raw):
        return "integer", int(raw[:-1])
    if UINTEGER.match(raw):
        return "unsigned", int(raw[:-1])
    if raw in BOOLEANS:
        return "boolean", BOOLEANS[raw]
    if FLOAT.match(raw):
        return "float", float(raw)
    raise ValueError(f"invalid field format {raw!r}")


def parse_line(line, multiplier):
    """(measurement, tags, fields {name: (type, value)}, time_ns) or ValueError."""
    sections = [s for s in split_unescaped(line, " ") if s != ""]
    if len(sections) < 2:
        raise ValueError("missing fields")
    if len(sections) > 3:
        raise ValueError("bad timestamp")
    key = split_unescaped(sections[0], ",")
    if key[0] == "":
        raise ValueError("missing measurement")
    tags = {}
    for tag in key[1:]:
        name, sep, value = tag.partition("=")
        if not sep or not name or not value:
            raise ValueError("missing tag value")
        tags[name] = value
    fields = {}
    for field in split_unescaped(sections[1], ","):
        name, sep, value = field.partition("=")
        if not sep or not name or value == "":
            raise ValueError("missing field value")
        fields[name] = field_value(value)
    if len(sections) == 3:
        if not re.match(r"^-?\d+$", sections[2]):
            raise ValueError("bad timestamp")
        time_ns = int(sections[2]) * multiplier
    else:
        time_ns = time.time_ns()
    return key[0], tags, fields, time_ns


class State:
    def __init__(self, org, buckets, token, max_body_bytes):
        self.lock = threading.Lock()
        self.org, self.buckets, self.token = org, set(buckets), token
        self.config = {"throttle_next": 0, "unavailable_next": 0, "retry_after": 1, "max_body_bytes": max_body_bytes}
        self.points = {}  # (bucket, measurement, tags tuple, time_ns) -> fields
        self.order = []
        self.types = {}  # (bucket, measurement, field) -> type
        self.stats = {"requests_by_status": {}, "points_written": 0, "points_dropped": 0, "precisions": {},
                      "max_lines_in_a_request": 0, "gzip_requests": 0}

    def write(self, bucket, lines, multiplier):
        """Writes parsed lines (all or nothing for syntax, point by point for types)."""
        parsed = []
        for line in lines:
            try:
                parsed.append(parse_line(line, multiplier))
            except ValueError as e:
                raise Refused(400, "invalid", f"unable to parse '{line}': {e}") from None
        dropped, first_conflict = 0, None
        for measurement, tags, fields, time_ns in parsed:
            conflict = None
            for name, (kind, _) in fields.items():
                known = self.types.get((bucket, measurement, name))
                if known is not None and known != kind:
                    conflict = (f'field type conflict: input field "{name}" on measurement "{measurement}" is type '
                                f"{kind}, already exists as type {known}")
                    break
            if conflict:
                dropped += 1
                first_conflict = first_conflict or conflict
                continue
            for name, (kind, _) in fields.items():
                self.types[(bucket, measurement, name)] = kind
            key = (bucket, measurement, tuple(sorted(tags.items())), time_ns)
            if key not in self.points:
                self.order.append(key)
                self.points[key] = {}
            self.points[key].update({name: value for name, (_, value) in fields.items()})
            self.stats["points_written"] += 1
        if dropped:
            self.stats["points_dropped"] += dropped
            raise Refused(422, "unprocessable entity",
                          f"failure writing points to database: partial write: {first_conflict} dropped={dropped}")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "influx2-test-server"

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        sys.stderr.write(f"{time.strftime('%H:%M:%S')} influx2-test-server {format % args}\n")

    def do_GET(self):
        self.handle_request()

    def do_POST(self):
        self.handle_request()

    def handle_request(self):
        state = self.server.state
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        try:
            # Read even when too large (bounded), so the client reads the 413 instead of a reset.
            body = self.rfile.read(min(length, DRAIN_LIMIT))
            if length > state.config["max_body_bytes"] and url.path == "/api/v2/write":
                self.close_connection = True
                raise Refused(413, "request too large", "unable to read data: points batch is too large")
            status, answer = self.route(url.path, query, body)
            headers = []
        except Refused as e:
            status, answer, headers = e.status, {"code": e.code, "message": e.message}, e.headers
        if url.path == "/api/v2/write":
            with state.lock:
                by_status = state.stats["requests_by_status"]
                by_status[str(status)] = by_status.get(str(status), 0) + 1
        payload = b"" if answer is None else json.dumps(answer).encode()
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if payload:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)

    def route(self, path, query, body):
        state = self.server.state
        if path == "/ping":
            return 204, None
        if path == "/health":
            return 200, {"name": "influxdb", "message": "ready for queries and writes", "status": "pass"}
        if path.startswith("/_test/"):
            return self.test_api(path, query, body)
        if path == "/api/v2/write" and self.command == "POST":
            return self.write(query, body)
        raise Refused(404, "not found", "path not found")

    def write(self, query, body):
        state = self.server.state
        scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
        if scheme not in ("Token", "Bearer") or token.strip() != state.token:
            raise Refused(401, "unauthorized", "unauthorized access")
        precision = query.get("precision") or "ns"
        if precision not in PRECISION_NS:
            raise Refused(400, "invalid", "invalid precision; valid precision units are ns, us, ms, and s")
        bucket, org = query.get("bucket", ""), query.get("org", "")
        if not bucket:
            raise Refused(404, "not found", "bucket not found")
        if not org:
            raise Refused(400, "invalid", "Please provide either orgID or org")
        if org != state.org:
            raise Refused(404, "not found", f'organization name "{org}" not found')
        if bucket not in state.buckets:
            raise Refused(404, "not found", f'bucket "{bucket}" not found')
        with state.lock:
            for key, status, code in (("throttle_next", 429, "too many requests"),
                                      ("unavailable_next", 503, "unavailable")):
                if state.config[key]:
                    state.config[key] -= 1
                    raise Refused(status, code, f"{code} (injected by {key})",
                                  [("Retry-After", str(state.config["retry_after"]))])
        if (self.headers.get("Content-Encoding") or "").lower() == "gzip":
            with state.lock:
                state.stats["gzip_requests"] += 1
            try:
                body = gzip.decompress(body)
            except (OSError, EOFError, zlib.error):
                raise Refused(400, "invalid", "gzipped HTTP body contains an invalid header") from None
            if len(body) > state.config["max_body_bytes"]:
                raise Refused(413, "request too large", "unable to read data: points batch is too large")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise Refused(400, "invalid", "unable to parse body: invalid UTF-8") from None
        lines = [line for line in text.split("\n") if line.strip() and not line.lstrip().startswith("#")]
        with state.lock:
            state.stats["precisions"][precision] = state.stats["precisions"].get(precision, 0) + 1
            state.stats["max_lines_in_a_request"] = max(state.stats["max_lines_in_a_request"], len(lines))
            state.write(bucket, lines, PRECISION_NS[precision])
        return 204, None

    def test_api(self, path, query, body):
        state = self.server.state
        with state.lock:
            if path == "/_test/points" and self.command == "GET":
                wanted = query.get("bucket")
                points = [{"bucket": k[0], "measurement": k[1], "tags": dict(k[2]), "fields": state.points[k],
                           "time_ns": k[3]} for k in state.order if wanted in (None, k[0])]
                return 200, {"points": points}
            if path == "/_test/stats" and self.command == "GET":
                return 200, json.loads(json.dumps(state.stats))
            if path == "/_test/config" and self.command == "POST":
                changes = json.loads(body or b"{}")
                unknown = set(changes) - set(state.config)
                if unknown or not all(isinstance(v, int) and v >= 0 for v in changes.values()):
                    raise Refused(400, "invalid", f"bad config {changes}; known: {sorted(state.config)}")
                state.config.update(changes)
                return 200, dict(state.config)
        raise Refused(404, "not found", f"no test endpoint {self.command} {path}")


def main():
    p = argparse.ArgumentParser(description="InfluxDB 2 write API contract server (see the module docstring)")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file", required=True)
    p.add_argument("--org", required=True)
    p.add_argument("--bucket", action="append", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--max-body-bytes", type=int, default=25 * 1024 * 1024)
    args = p.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.state = State(args.org, args.bucket, args.token, args.max_body_bytes)
    temp = f"{args.port_file}.{os.getpid()}.tmp"
    with open(temp, "w", encoding="utf-8") as f:
        f.write(f"{server.server_address[1]}\n")
    os.replace(temp, args.port_file)
    sys.stderr.write(f"influx2-test-server listening on 127.0.0.1:{server.server_address[1]}\n")
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
