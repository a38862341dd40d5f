#!/usr/bin/env python3
"""A test double for the Elasticsearch 8 REST API that millrace's sink workers use (`_bulk`).
(This script is the entry point; the code is in the package es_server/ next to it.)

Why it exists: no real Elasticsearch can be installed where millrace's integration tests run, so
the sink is tested against this server instead. It follows the documented `_bulk` contract of
Elasticsearch 8.11 closely (request format, per-item results and error shapes, dynamic mapping
conflicts, data streams, whole-request errors) and adds fault injection and inspection endpoints
under `/_test/` so tests can provoke retries and check exactly what was stored.

Standard library only. Start it with

    python3 tests/python/es_test_server.py --port 0 --port-file PATH [options]

It binds 127.0.0.1, writes its actual port to PATH (temp file + rename) once listening and logs
one line per request to stderr. With --tls-cert PEM --tls-key PEM it serves HTTPS only (as
Elasticsearch 8 does by default); --basic USER:PASS and --api-key KEY make it answer 401 with
Elasticsearch's security_exception to requests without those credentials.

--nodes N starts N listeners sharing one store, like the nodes of one cluster (the port file names
the first). --control-port-file PATH names a separate plain-HTTP listener serving /_test/ only,
which stays up while nodes stop: a stopped node's port refuses connections (ECONNREFUSED, its open
connections cut), as a node whose process is down; started again it binds the same port, with
every document kept.

Elasticsearch API (subset):
    GET|HEAD /                         cluster info
    POST|PUT /_bulk, /{index}/_bulk    index, create, update, delete (NDJSON, optionally gzip)
    GET|POST /_count, /{index}/_count  document count (comma lists and wildcards; match_all only)
    GET /_cluster/health
    PUT|GET|DELETE /_data_stream/{name}
    PUT|GET|DELETE /_index_template/{name}   (index_patterns, priority, data_stream, mappings)
    PUT|GET|DELETE /_ilm/policy/{name}      kept as given (never executed), version bumped per PUT;
                                       a data stream's GET shows its template's index.lifecycle.name
    PUT|GET|DELETE /_ingest/pipeline/{id}    kept as given; bulk items naming it (`pipeline` in the
                                       action or the query) run its `set` processors only, items
                                       naming an unknown one fail with 400 as in Elasticsearch
    PUT|HEAD|DELETE /{index}, GET /{index}/_mapping, GET /{index}/_doc/{id}
    POST /{data stream}/_rollover      new backing index .ds-{stream}-{yyyy.MM.dd}-{generation:06}
                                       becomes the write index (unconditional rollover only)
    GET|PUT /{index}/_settings         of the settings only index.blocks.write can be changed; a
                                       blocked index fails items with 403 cluster_block_exception

Test endpoints (never need auth, work while `down`):
    GET  /_test/docs[?index=EXPR]   {"docs": [{"index", "data_stream", "id", "version", "seq_no",
                                     "source"}]} in order of first write
    GET  /_test/stats               counters (see es_server.store.Store.new_counters)
    GET  /_test/config              the fault-injection settings
    POST /_test/config              change them: {"reject_every": 3, "down": true, ...}
    GET  /_test/nodes               {"nodes": [{"node", "port", "listening"}]}
    POST /_test/nodes/{n}/stop|start  close a node's listener (connections refused) / open it again
    POST /_test/reset               forget documents, indices, mappings, data streams, API-made
                                    templates and counters (settings are kept)

Fault injection (command-line options or POST /_test/config):
    reject_every N      every Nth bulk request: whole-request 429 es_rejected_execution_exception
    item_429_every N    every Nth bulk item: per-item 429 es_rejected_execution_exception
    item_503_every N    every Nth bulk item: per-item 503 unavailable_shards_exception (not written)
    item_500_every N    every Nth bulk item (of those past item_503_every): per-item 500 exception
    forbidden_indices   list of globs: items naming a matching index get 403 security_exception (the
                        user's roles grant no write privilege there; nothing is auto-created)
    drop_response_next N  the next N bulk requests are executed, then the connection is closed
                        without an answer (the client must send the same documents again)
    down                every request but /_test/* gets 503 cluster_block_exception
    max_body_bytes N    larger (decompressed) bodies get 413 with an empty body (http.max_content_length)
    latency_ms N        sleep before answering bulk requests
    strict_types        mapping conflicts by JSON type family (see below)
    legacy_parsing_errors  document parsing failures as Elasticsearch before 8.8 names them:
                        mapper_parsing_exception without the [line:column] prefix (8.8 and later,
                        and this server by default, say document_parsing_exception)
    total_fields_limit  index.mapping.total_fields.limit (1000)

Mapping: by default a field's type is fixed by the first document that sets it, with
Elasticsearch's dynamic rules (long, float, boolean, object, date for strings that pass date
detection, text+keyword for other strings) and its coercion rules on later documents ("12" fits a
long, 12 fits a text field, "abc" does not fit a long). With strict_types a later value must also
be of the same JSON family (string, number, boolean, object) as the first one, which is simpler
to provoke in tests.

Known deviations from Elasticsearch, chosen on purpose:
  * documents are visible to _count and /_test/docs at once (no refresh interval);
  * PUT /_data_stream/{name} needs no matching index template;
  * reasons of JSON syntax errors come from Python's parser, not Jackson, and the [line:column]
    positions in parse errors are approximate;
  * no scripts, aliases, routing or search; of ingest pipelines only `set` processors run; custom date formats are accepted
    without being checked; filter_path supports include and exclude patterns with `*` and `**`.
"""

import os
import sys

# The package lives next to this script; make it importable from any working directory (and
# under `python3 -I`, which does not put the script's directory on sys.path).
_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from es_server.server import main  # noqa: E402 - after the sys.path set-up

if __name__ == "__main__":
    main()
