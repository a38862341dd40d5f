"""The threaded HTTP server, the command line and main(): binds, writes the port file and serves."""

import argparse
import json
import os
import ssl
import sys
import traceback
from http.server import ThreadingHTTPServer

from .common import BUILTIN_DATA_STREAM_PATTERNS, DEFAULT_MAX_BODY_BYTES, log
from .handler import Handler
from .settings import Settings
from .store import Store
from .values import generate_uuid


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    # An ssl.SSLContext when serving HTTPS (--tls-cert/--tls-key), else None.
    tls_context = None

    def finish_request(self, request, client_address):
        # The TLS handshake happens here, on the connection's own thread, so that a client that
        # stalls or fails its handshake holds up no one else. A failed handshake (a client that
        # does not trust the certificate, plain HTTP on the TLS port) ends in handle_error.
        if self.tls_context is not None:
            request = self.tls_context.wrap_socket(request, server_side=True)
            # With --tls-client-ca, a verified client certificate is named once per connection.
            subject = dict(field for rdn in (request.getpeercert() or {}).get("subject", ()) for field in rdn)
            if subject:
                log(f"tls client certificate CN={subject.get('commonName', '?')}")
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address):
        log(f"connection from {client_address} failed: {traceback.format_exc().strip().splitlines()[-1]}")


def write_port_file(path, port):
    directory = os.path.dirname(os.path.abspath(path))
    temp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    with open(temp, "w", encoding="utf-8") as f:
        f.write(f"{port}\n")
    os.replace(temp, path)


def parse_args(argv):
    p = argparse.ArgumentParser(description="Elasticsearch 8 _bulk test double (see the module docstring)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file", help="write the bound port here (atomically) once listening")
    p.add_argument("--basic", metavar="USER:PASS", help="require HTTP basic auth with these credentials")
    p.add_argument("--api-key", metavar="KEY", help="require (or also accept) 'Authorization: ApiKey KEY'")
    p.add_argument("--tls-cert", metavar="PEM", help="serve HTTPS with this certificate (chain) file")
    p.add_argument("--tls-key", metavar="PEM", help="the private key of --tls-cert")
    p.add_argument("--tls-client-ca", metavar="PEM",
                   help="ask clients for a certificate signed by this CA (optional for them; logged when given)")
    p.add_argument("--data-stream-pattern", action="append", default=[], metavar="GLOB",
                   help="names matching this glob become data streams when first written (repeatable)")
    p.add_argument("--no-builtin-templates", action="store_true",
                   help=f"do not treat {', '.join(BUILTIN_DATA_STREAM_PATTERNS)} as data streams "
                        "(like stack.templates.enabled: false)")
    p.add_argument("--reject-every", type=int, default=0)
    p.add_argument("--item-429-every", type=int, default=0)
    p.add_argument("--down", action="store_true")
    p.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES)
    p.add_argument("--latency-ms", type=float, default=0)
    p.add_argument("--strict-types", action="store_true")
    p.add_argument("--legacy-parsing-errors", action="store_true")
    p.add_argument("--total-fields-limit", type=int, default=1000)
    args = p.parse_args(argv)
    if args.basic is not None and ":" not in args.basic:
        p.error("--basic must be USER:PASS")
    if (args.tls_cert is None) != (args.tls_key is None):
        p.error("--tls-cert and --tls-key go together")
    return args


def main(argv=None):
    args = parse_args(argv)
    settings = Settings()
    changes = {
        "reject_every": args.reject_every, "item_429_every": args.item_429_every, "down": args.down,
        "max_body_bytes": args.max_body_bytes, "latency_ms": args.latency_ms, "strict_types": args.strict_types,
        "total_fields_limit": args.total_fields_limit, "legacy_parsing_errors": args.legacy_parsing_errors,
    }
    problem = Settings.check(changes)
    if problem:
        sys.exit(f"es_test_server: {problem}")
    for key, value in changes.items():
        setattr(settings, key, value)
    server = Server((args.host, args.port), Handler)
    scheme = "http"
    if args.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        if args.tls_client_ca:
            context.load_verify_locations(args.tls_client_ca)
            context.verify_mode = ssl.CERT_OPTIONAL
        server.tls_context = context
        scheme = "https"
    server.store = Store(settings, args.data_stream_pattern, not args.no_builtin_templates)
    server.auth = {k: v for k, v in (("basic", args.basic), ("api_key", args.api_key)) if v}
    server.cluster_uuid = generate_uuid()
    port = server.server_address[1]
    if args.port_file:
        write_port_file(args.port_file, port)
    log(f"listening on {scheme}://{args.host}:{port} settings={json.dumps(settings.to_json())}")
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
