#!/usr/bin/env python3
"""A Prometheus endpoint behind TLS and a bearer token, for the agent's scrape tests.

    python3 tests/python/https_metrics_server.py --port-file PATH --tls-cert PEM --tls-key PEM \
        --bearer TOKEN

Binds 127.0.0.1 on a free port, writes the port to PATH (temp file + rename) once listening,
and answers GET /metrics with a small text exposition when the request carries
`Authorization: Bearer TOKEN`, 401 otherwise. One log line per request on stderr, saying whether
the token matched (never the token). Standard library only.
"""

import argparse
import os
import ssl
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BODY = b"# TYPE secure_demo_up gauge\nsecure_demo_up{zone=\"a\"} 1\nsecure_demo_requests_total 42\n"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - BaseHTTPRequestHandler's signature
        sys.stderr.write(f"{self.address_string()} {format % args}\n")

    def do_GET(self):  # noqa: N802 - BaseHTTPRequestHandler's naming
        authorized = self.headers.get("Authorization") == f"Bearer {self.server.bearer}"
        sys.stderr.write(f"GET {self.path} token {'accepted' if authorized else 'refused'}\n")
        if self.path != "/metrics":
            status, body = 404, b"not found\n"
        elif not authorized:
            status, body = 401, b"unauthorized\n"
        else:
            status, body = 200, BODY
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        if status == 401:
            self.send_header("WWW-Authenticate", "Bearer")
        self.end_headers()
        self.wfile.write(body)


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def finish_request(self, request, client_address):
        # The handshake on the connection's own thread; a failed one ends in handle_error.
        super().finish_request(self.tls_context.wrap_socket(request, server_side=True), client_address)

    def handle_error(self, request, client_address):
        sys.stderr.write(f"connection from {client_address} failed: {sys.exc_info()[1]}\n")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port-file", required=True)
    p.add_argument("--tls-cert", required=True)
    p.add_argument("--tls-key", required=True)
    p.add_argument("--bearer", required=True)
    args = p.parse_args()
    server = Server(("127.0.0.1", 0), Handler)
    server.bearer = args.bearer
    server.tls_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.tls_context.load_cert_chain(args.tls_cert, args.tls_key)
    temp = f"{args.port_file}.{os.getpid()}.tmp"
    with open(temp, "w", encoding="utf-8") as f:
        f.write(f"{server.server_address[1]}\n")
    os.replace(temp, args.port_file)
    sys.stderr.write(f"listening on https://127.0.0.1:{server.server_address[1]}\n")
    server.serve_forever(poll_interval=0.2)


if __name__ == "__main__":
    main()
