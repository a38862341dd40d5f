"""The Elasticsearch 8 `_bulk` test double behind tests/python/es_test_server.py (its docstring
describes the API, the test endpoints and the fault injection). Modules by responsibility:

    common        constants (version, limits, field type families) and the stderr logger
    errors        errors in Elasticsearch's shapes: whole-request (HttpError) and per-item (ItemFailure)
    values        strict JSON, dates, value families and previews, ids, partial-document merge
    names         index name rules and wildcard expressions
    mapping       field types, mappings and the document parser (dynamic typing, conflicts)
    settings      fault-injection settings (command line and POST /_test/config)
    store         indices, documents, data streams, index templates and counters
    bulk_parse    splitting and validating an NDJSON `_bulk` body into actions
    bulk_exec     running bulk actions against the store (per-item results)
    filter_path   the filter_path response filter
    http_util     the Response type, body decompression, Content-Type check
    handler       the HTTP request handler: body reading, auth, routing
    es_api        the Elasticsearch endpoints (_bulk, _count, indices, data streams, templates)
    control_api   the /_test/ endpoints (documents, stats, config, nodes, reset)
    server        the HTTP servers (nodes that stop and start, the control listener), the command
                  line and main()
"""
