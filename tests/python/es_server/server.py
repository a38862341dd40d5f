"""The threaded HTTP server, the command line and main(): binds, writes the port file and serves."""

import argparse
import json
import os
import socket
import ssl
import sys
import threading
import time
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
    # The control listener serves /_test/ only; a node listener serves everything.
    control_only = False
    node_number = None

    def __init__(self, address, handler):
        super().__init__(address, handler)
        self.connections = set()
        self.connections_lock = threading.Lock()

    def finish_request(self, request, client_address):
        self.track(request, True)
        try:
            # The TLS handshake happens here, on the connection's own thread, so that a client that
            # stalls or fails its handshake holds up no one else. A failed handshake (a client that
            # does not trust the certificate, plain HTTP on the TLS port) ends in handle_error.
            if self.tls_context is not None:
                raw = request
                request = self.tls_context.wrap_socket(raw, server_side=True)
                self.track(raw, False)
                self.track(request, True)
                # With --tls-client-ca, a verified client certificate is named once per connection.
                subject = dict(field for rdn in (request.getpeercert() or {}).get("subject", ()) for field in rdn)
                if subject:
                    log(f"tls client certificate CN={subject.get('commonName', '?')}")
            super().finish_request(request, client_address)
        finally:
            self.track(request, False)

    def track(self, connection, open_):
        with self.connections_lock:
            (self.connections.add if open_ else self.connections.discard)(connection)

    def close_connections(self):
        """Cuts every open connection, as a node that dies does: clients see a reset or EOF."""
        with self.connections_lock:
            connections = list(self.connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Node:
    """One listener of the cluster, sharing the store with the others. stop() closes its listening
    socket and cuts its connections, so clients get "connection refused" as from a stopped node;
    start() binds the same port again, with every document kept."""

    def __init__(self, number, host, port, setup):
        self.number = number
        self.host = host
        self.port = port
        self.setup = setup  # configures a new Server (store, auth, TLS)
        self.server = None
        self.thread = None
        self.lock = threading.Lock()

    @property
    def listening(self):
        return self.server is not None

    def start(self):
        with self.lock:
            if self.server is not None:
                return
            deadline = time.monotonic() + 10
            while True:
                try:
                    server = Server((self.host, self.port), Handler)
                    break
                except OSError:
                    # The port is briefly held after a stop (or was taken): bounded retries.
                    if self.port == 0 or time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            server.node_number = self.number
            self.setup(server)
            self.port = server.server_address[1]
            self.server = server
            self.thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
            self.thread.start()
        log(f"node {self.number} listening on port {self.port}")

    def stop(self):
        with self.lock:
            server, thread = self.server, self.thread
            self.server = self.thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        server.close_connections()
        thread.join(5)
        log(f"node {self.number} stopped: port {self.port} refuses connections")

    def describe(self):
        return {"node": self.number, "port": self.port, "listening": self.listening}

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
    p.add_argument("--nodes", type=int, default=1,
                   help="listeners sharing one store, like nodes of one cluster (the port file names the first)")
    p.add_argument("--control-port-file",
                   help="write the port of the control listener (plain HTTP, /_test/ only, up while nodes stop)")
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
    if args.nodes < 1:
        p.error("--nodes must be at least 1")
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
    context = None
    scheme = "http"
    if args.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        if args.tls_client_ca:
            context.load_verify_locations(args.tls_client_ca)
            context.verify_mode = ssl.CERT_OPTIONAL
        scheme = "https"
    store = Store(settings, args.data_stream_pattern, not args.no_builtin_templates)
    auth = {k: v for k, v in (("basic", args.basic), ("api_key", args.api_key)) if v}
    cluster_uuid = generate_uuid()
    nodes = []

    def setup(server):
        server.tls_context = context
        server.store = store
        server.auth = auth
        server.cluster_uuid = cluster_uuid
        server.nodes = nodes

    for number in range(args.nodes):
        nodes.append(Node(number, args.host, args.port if number == 0 else 0, setup))
        nodes[-1].start()
    # The control listener (plain HTTP, /_test/ only) stays up while nodes stop and start.
    control = Server((args.host, 0), Handler)
    setup(control)
    control.tls_context = None
    control.control_only = True
    if args.control_port_file:
        write_port_file(args.control_port_file, control.server_address[1])
    if args.port_file:
        write_port_file(args.port_file, nodes[0].port)
    ports = ",".join(str(n.port) for n in nodes)
    log(f"listening on {scheme}://{args.host}:{ports} control=http://{args.host}:{control.server_address[1]} "
        f"settings={json.dumps(settings.to_json())}")
    try:
        control.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        control.server_close()
        for node in nodes:
            node.stop()
