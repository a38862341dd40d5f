"""Tests of the Elasticsearch test double (es_test_server.py) over real HTTP:

    python3 -m unittest discover -s tests/python -p 'test_es_test_server.py'

Each test class starts the server as a subprocess on a free port (read from its port file) and
talks to it with urllib, so what is tested is what the sink's integration tests will see.
"""

import base64
import gzip
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

SERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "es_test_server.py")
NDJSON = {"Content-Type": "application/x-ndjson"}
DEFAULTS = {
    "reject_every": 0, "item_429_every": 0, "down": False, "max_body_bytes": 100 * 1024 * 1024,
    "latency_ms": 0, "strict_types": False, "total_fields_limit": 1000, "legacy_parsing_errors": False,
    "item_500_every": 0, "item_503_every": 0, "drop_response_next": 0, "forbidden_indices": [],
}
ID_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


def ndjson(*objects):
    return "".join(json.dumps(o) + "\n" for o in objects).encode()


class ServerProcess:
    """es_test_server.py in a subprocess, its port read from the port file (bounded wait)."""

    def __init__(self, *args):
        self.dir = tempfile.TemporaryDirectory(prefix="es-test-server-")
        self.port_file = os.path.join(self.dir.name, "port")
        self.log_path = os.path.join(self.dir.name, "server.log")
        self.log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, SERVER, "--port", "0", "--port-file", self.port_file, *args],
            stdout=self.log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while not os.path.exists(self.port_file):
            if self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"es_test_server exited with {self.proc.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"es_test_server wrote no port file within 20 s:\n{self.log()}")
            time.sleep(0.02)
        with open(self.port_file, encoding="utf-8") as f:
            self.port = int(f.read())
        self.url = f"http://127.0.0.1:{self.port}"

    def log(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log_file.close()
        self.dir.cleanup()

    def request(self, method, path, body=None, headers=None):
        """(status, headers, body bytes); HTTP errors are answers, not exceptions."""
        req = urllib.request.Request(self.url + path, data=body, method=method, headers=dict(headers or {}))
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as e:
            with e:
                return e.code, e.headers, e.read()

    def json(self, method, path, body=None, headers=None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            headers = dict(headers or {}, **{"Content-Type": "application/json"})
        status, _, data = self.request(method, path, body, headers)
        return status, json.loads(data) if data else None

    def bulk(self, body, path="/_bulk", headers=None):
        if not isinstance(body, bytes):
            body = ndjson(*body)
        return self.json("POST", path, body, dict(NDJSON, **(headers or {})))

    def configure(self, **settings):
        status, body = self.json("POST", "/_test/config", settings)
        assert status == 200, body
        return body

    def docs(self, index=None):
        status, body = self.json("GET", "/_test/docs" + (f"?index={index}" if index else ""))
        assert status == 200, body
        return body["docs"]

    def stats(self):
        return self.json("GET", "/_test/stats")[1]


def item_of(response, n):
    """(action key, item) of the nth item of a bulk response."""
    ((key, item),) = response["items"][n].items()
    return key, item


class ServerTestCase(unittest.TestCase):
    server_args = ()

    @classmethod
    def setUpClass(cls):
        cls.es = ServerProcess(*cls.server_args)

    @classmethod
    def tearDownClass(cls):
        cls.es.stop()

    def setUp(self):
        self.assertEqual(self.es.json("POST", "/_test/reset")[0], 200)
        self.es.configure(**DEFAULTS)

    def assert_whole_request_error(self, status, body, code, type_, reason=None):
        self.assertEqual(status, code, body)
        self.assertEqual(body["status"], code)
        self.assertEqual(body["error"]["type"], type_, body)
        self.assertEqual(body["error"]["root_cause"][0]["type"], type_)
        if reason is not None:
            self.assertEqual(body["error"]["reason"], reason)


class BulkContractTests(ServerTestCase):
    def test_root_returns_cluster_info(self):
        status, headers, data = self.es.request("GET", "/")
        self.assertEqual(status, 200)
        info = json.loads(data)
        self.assertEqual(info["version"]["number"], "8.11.0")
        self.assertEqual(info["tagline"], "You Know, for Search")
        self.assertIn("cluster_name", info)
        self.assertIn("name", info)
        self.assertEqual(headers["X-elastic-product"], "Elasticsearch")
        self.assertEqual(self.es.request("HEAD", "/")[0], 200)

    def test_documented_example_answers_items_in_request_order(self):
        status, body = self.es.bulk([
            {"index": {"_index": "test", "_id": "1"}}, {"field1": "value1"},
            {"delete": {"_index": "test", "_id": "2"}},
            {"create": {"_index": "test", "_id": "3"}}, {"field1": "value3"},
            {"update": {"_id": "1", "_index": "test"}}, {"doc": {"field2": "value2"}},
        ])
        self.assertEqual(status, 200)
        self.assertFalse(body["errors"], "a not_found delete is not an error")
        self.assertIsInstance(body["took"], int)
        expected = [("index", "1", "created", 201, 1), ("delete", "2", "not_found", 404, 1),
                    ("create", "3", "created", 201, 1), ("update", "1", "updated", 200, 2)]
        seq_nos = []
        for n, (action, doc_id, result, code, version) in enumerate(expected):
            key, item = item_of(body, n)
            self.assertEqual((key, item["_id"], item["result"], item["status"], item["_version"]),
                             (action, doc_id, result, code, version))
            self.assertEqual(item["_index"], "test")
            self.assertEqual(item["_shards"], {"total": 2, "successful": 1, "failed": 0})
            self.assertEqual(item["_primary_term"], 1)
            seq_nos.append(item["_seq_no"])
        self.assertEqual(seq_nos, sorted(seq_nos))
        self.assertEqual(len(set(seq_nos)), 4)
        docs = {d["id"]: d for d in self.es.docs()}
        self.assertEqual(docs["1"]["source"], {"field1": "value1", "field2": "value2"})
        self.assertEqual(docs["1"]["version"], 2)
        self.assertEqual(docs["3"]["source"], {"field1": "value3"})
        self.assertNotIn("2", docs)

    def test_items_keep_order_across_many_actions_and_indices(self):
        actions = []
        for n in range(30):
            actions += [{"index": {"_index": f"idx-{n % 3}", "_id": str(n)}}, {"n": n}]
        status, body = self.es.bulk(actions)
        self.assertEqual(status, 200)
        self.assertEqual([item_of(body, n)[1]["_id"] for n in range(30)], [str(n) for n in range(30)])
        self.assertEqual([d["source"]["n"] for d in self.es.docs()], list(range(30)))

    def test_index_overwrites_and_increments_version(self):
        for version, (result, code) in enumerate([("created", 201), ("updated", 200), ("updated", 200)], 1):
            status, body = self.es.bulk([{"index": {"_index": "t", "_id": "a"}}, {"v": version}])
            self.assertEqual(status, 200)
            _, item = item_of(body, 0)
            self.assertEqual((item["result"], item["status"], item["_version"]), (result, code, version))
        (doc,) = self.es.docs()
        self.assertEqual((doc["version"], doc["source"]), (3, {"v": 3}))

    def test_create_of_an_existing_id_is_a_409_item(self):
        self.es.bulk([{"create": {"_index": "t", "_id": "a"}}, {"v": 1}])
        status, body = self.es.bulk([
            {"create": {"_index": "t", "_id": "a"}}, {"v": 2},
            {"create": {"_index": "t", "_id": "b"}}, {"v": 3},
        ])
        self.assertEqual(status, 200)
        self.assertTrue(body["errors"])
        key, item = item_of(body, 0)
        self.assertEqual((key, item["status"], item["_id"], item["_index"]), ("create", 409, "a", "t"))
        self.assertEqual(item["error"]["type"], "version_conflict_engine_exception")
        self.assertEqual(item["error"]["reason"], "[a]: version conflict, document already exists (current version [1])")
        self.assertEqual(item["error"]["index"], "t")
        self.assertEqual(item_of(body, 1)[1]["status"], 201)
        self.assertEqual({d["id"]: d["source"] for d in self.es.docs()}, {"a": {"v": 1}, "b": {"v": 3}})

    def test_index_with_op_type_create_answers_as_create(self):
        self.es.bulk([{"index": {"_index": "t", "_id": "a"}}, {"v": 1}])
        _, body = self.es.bulk([{"index": {"_index": "t", "_id": "a", "op_type": "create"}}, {"v": 2}])
        key, item = item_of(body, 0)
        self.assertEqual((key, item["status"]), ("create", 409))

    def test_update_merges_upserts_detects_noops_and_404s_missing_documents(self):
        self.es.bulk([{"index": {"_index": "t", "_id": "a"}}, {"a": {"x": 1, "y": 2}, "keep": True}])
        _, body = self.es.bulk([
            {"update": {"_index": "t", "_id": "a"}}, {"doc": {"a": {"y": 3}, "new": "z"}},
            {"update": {"_index": "t", "_id": "a"}}, {"doc": {"a": {"y": 3}}},
            {"update": {"_index": "t", "_id": "missing"}}, {"doc": {"x": 1}},
            {"update": {"_index": "t", "_id": "up1"}}, {"doc": {"x": 1}, "doc_as_upsert": True},
            {"update": {"_index": "t", "_id": "up2"}}, {"doc": {"x": 1}, "upsert": {"x": 0}},
        ])
        self.assertTrue(body["errors"])
        merged = item_of(body, 0)[1]
        self.assertEqual((merged["result"], merged["status"], merged["_version"]), ("updated", 200, 2))
        noop = item_of(body, 1)[1]
        self.assertEqual((noop["result"], noop["status"], noop["_version"]), ("noop", 200, 2))
        missing = item_of(body, 2)[1]
        self.assertEqual(missing["status"], 404)
        self.assertEqual(missing["error"]["type"], "document_missing_exception")
        self.assertEqual(missing["error"]["reason"], "[missing]: document missing")
        self.assertEqual([item_of(body, n)[1]["result"] for n in (3, 4)], ["created", "created"])
        docs = {d["id"]: d["source"] for d in self.es.docs()}
        self.assertEqual(docs["a"], {"a": {"x": 1, "y": 3}, "keep": True, "new": "z"})
        self.assertEqual(docs["up1"], {"x": 1})
        self.assertEqual(docs["up2"], {"x": 0})
        self.assertNotIn("missing", docs)

    def test_update_of_a_missing_index_is_index_not_found(self):
        _, body = self.es.bulk([{"update": {"_index": "nothere", "_id": "a"}}, {"doc": {"x": 1}}])
        item = item_of(body, 0)[1]
        self.assertEqual((item["status"], item["error"]["type"]), (404, "index_not_found_exception"))

    def test_delete_found_and_not_found(self):
        self.es.bulk([{"index": {"_index": "t", "_id": "a"}}, {"v": 1}])
        _, body = self.es.bulk([{"delete": {"_index": "t", "_id": "a"}}, {"delete": {"_index": "t", "_id": "a"}},
                                {"delete": {"_index": "nothere", "_id": "a"}}])
        deleted, again, no_index = (item_of(body, n)[1] for n in range(3))
        self.assertEqual((deleted["result"], deleted["status"], deleted["_version"]), ("deleted", 200, 2))
        self.assertEqual((again["result"], again["status"]), ("not_found", 404))
        self.assertNotIn("error", again)
        self.assertEqual(no_index["error"]["type"], "index_not_found_exception")
        self.assertTrue(body["errors"])
        self.assertEqual(self.es.docs(), [])
        _, body = self.es.bulk([{"index": {"_index": "t", "_id": "a"}}, {"v": 2}])
        item = item_of(body, 0)[1]
        self.assertEqual(item["result"], "created")
        self.assertGreater(item["_version"], deleted["_version"], "versions continue after a delete")

    def test_missing_ids_are_generated(self):
        status, body = self.es.bulk([{"index": {"_index": "t"}}, {"n": 1}] * 25 + [{"create": {"_index": "t"}}, {"n": 2}] * 25)
        self.assertEqual(status, 200)
        ids = [item_of(body, n)[1]["_id"] for n in range(50)]
        self.assertEqual(len(set(ids)), 50)
        for doc_id in ids:
            self.assertEqual(len(doc_id), 20)
            self.assertLessEqual(set(doc_id), ID_CHARS)
        self.assertEqual(sorted(d["id"] for d in self.es.docs()), sorted(ids))

    def test_default_index_comes_from_the_path(self):
        _, body = self.es.bulk([{"index": {"_id": "1"}}, {"a": 1}, {"index": {"_index": "other", "_id": "2"}}, {"a": 2}],
                               path="/from-path/_bulk")
        self.assertEqual([item_of(body, n)[1]["_index"] for n in range(2)], ["from-path", "other"])
        status, _ = self.es.bulk([{"index": {"_id": "1"}}, {"a": 1}], path="/from-path/_bulk")
        self.assertEqual(status, 200)
        self.assertEqual(self.es.request("PUT", "/from-path/_bulk", ndjson({"index": {}}, {"a": 1}), NDJSON)[0], 200)

    def test_validation_failures_reject_the_whole_request(self):
        cases = [
            ([{"index": {"_id": "1"}}, {"a": 1}], "Validation Failed: 1: index is missing;"),
            ([{"delete": {"_index": "t"}}], "Validation Failed: 1: id is missing;"),
            ([{"index": {"_index": "t", "_id": ""}}, {"a": 1}], "Validation Failed: 1: if _id is specified it must not be empty;"),
            ([{"index": {"_index": "t", "_id": "x" * 513}}, {"a": 1}], None),
            ([{"index": {"_index": "t"}}], "Validation Failed: 1: source is missing;"),
            ([{"update": {"_index": "t", "_id": "1"}}, {"upsert": {"a": 1}}], "Validation Failed: 1: script or doc is missing;"),
        ]
        for actions, reason in cases:
            with self.subTest(actions=actions):
                status, body = self.es.bulk([{"index": {"_index": "ok", "_id": "first"}}, {"a": 1}] + actions)
                self.assert_whole_request_error(status, body, 400, "action_request_validation_exception", reason)
        self.assertEqual(self.es.docs(), [], "nothing of a rejected request is stored")

    def test_body_must_end_with_a_newline(self):
        body = ndjson({"index": {"_index": "t", "_id": "1"}}, {"a": 1})[:-1]
        status, answer = self.es.bulk(body)
        self.assert_whole_request_error(status, answer, 400, "illegal_argument_exception",
                                        "The bulk request must be terminated by a newline [\\n]")
        self.assertEqual(self.es.docs(), [])

    def test_empty_body_is_rejected(self):
        status, body = self.es.bulk(b"")
        self.assert_whole_request_error(status, body, 400, "parse_exception", "request body is required")

    def test_malformed_action_line_rejects_the_whole_request(self):
        body = ndjson({"index": {"_index": "t", "_id": "1"}}, {"a": 1}) + b'{"index": {"_index": "t",\n{"a": 2}\n'
        status, answer = self.es.bulk(body)
        self.assert_whole_request_error(status, answer, 400, "x_content_parse_exception")
        self.assertEqual(self.es.docs(), [])

    def test_malformed_action_structure(self):
        cases = [
            (b'["index"]\n', "expected START_OBJECT or END_OBJECT but found [START_ARRAY]"),
            (b'{"explode": {}}\n{}\n', "expected field [create], [delete], [index] or [update] but found [explode]"),
            (b'{"index": {"_index": "t", "_type": "_doc"}}\n{}\n', "contains an unknown parameter [_type]"),
            (b'{"index": {}, "delete": {}}\n', "expected END_OBJECT but found [FIELD_NAME]"),
            (b'{"index": {"_index": "t", "_id": "a", "_id": "b"}}\n{}\n', "Duplicate field '_id'"),
        ]
        for raw, reason_part in cases:
            with self.subTest(raw=raw):
                status, body = self.es.bulk(raw)
                self.assertEqual(status, 400, body)
                self.assertIn(reason_part, body["error"]["reason"])

    def test_malformed_source_line_fails_only_its_item(self):
        body = (ndjson({"index": {"_index": "t", "_id": "1"}}, {"a": 1})
                + b'{"index": {"_index": "t", "_id": "2"}}\n{"a": \n'
                + b'{"index": {"_index": "t", "_id": "3"}}\n\xff\xfe\n'
                + b'{"index": {"_index": "t", "_id": "4"}}\n[1, 2]\n'
                + ndjson({"index": {"_index": "t", "_id": "5"}}, {"a": 5}))
        status, answer = self.es.bulk(body)
        self.assertEqual(status, 200)
        self.assertTrue(answer["errors"])
        self.assertEqual([item_of(answer, n)[1]["status"] for n in range(5)], [201, 400, 400, 400, 201])
        for n in (1, 2, 3):
            self.assertEqual(item_of(answer, n)[1]["error"]["type"], "document_parsing_exception")
        self.assertEqual(sorted(d["id"] for d in self.es.docs()), ["1", "5"])

    def test_metadata_fields_inside_a_document_fail_only_their_item(self):
        body = ndjson({"index": {"_index": "t", "_id": "1"}}, {"_id": "x", "a": 1},
                      {"index": {"_index": "t", "_id": "2"}}, {"a": 2, "_index": "other"},
                      {"index": {"_index": "t", "_id": "3"}}, {"a": 3, "nested": {"_id": "allowed below the top"}})
        status, answer = self.es.bulk(body)
        self.assertEqual(status, 200)
        self.assertEqual([item_of(answer, n)[1]["status"] for n in range(3)], [400, 400, 201])
        error = item_of(answer, 0)[1]["error"]
        self.assertEqual(error["type"], "document_parsing_exception")
        self.assertIn("Field [_id] is a metadata field and cannot be added inside a document", error["reason"])
        self.assertEqual(sorted(d["id"] for d in self.es.docs()), ["3"])

    def test_gzip_bodies_are_decompressed(self):
        raw = ndjson(*[x for n in range(20) for x in ({"index": {"_index": "t", "_id": str(n)}}, {"message": "hello " * 20})])
        compressed = gzip.compress(raw)
        status, body = self.es.bulk(compressed, headers={"Content-Encoding": "gzip"})
        self.assertEqual(status, 200, body)
        self.assertFalse(body["errors"])
        self.assertEqual(len(self.es.docs()), 20)
        stats = self.es.stats()
        self.assertEqual(stats["gzip_requests"], 1)
        self.assertEqual(stats["bytes_received"], len(compressed))
        self.assertEqual(stats["bytes_decompressed"], len(raw))

    def test_corrupt_gzip_is_a_400(self):
        status, body = self.es.bulk(b"\x1f\x8b not really gzip", headers={"Content-Encoding": "gzip"})
        self.assertEqual(status, 400)
        self.assertEqual(body["error"]["type"], "illegal_argument_exception")

    def test_content_type_must_be_json_or_ndjson(self):
        raw = ndjson({"index": {"_index": "t"}}, {"a": 1})
        for content_type in ("application/json", "application/x-ndjson; charset=UTF-8",
                             "application/vnd.elasticsearch+x-ndjson; compatible-with=8"):
            with self.subTest(content_type=content_type):
                self.assertEqual(self.es.bulk(raw, headers={"Content-Type": content_type})[0], 200)
        status, body = self.es.bulk(raw, headers={"Content-Type": "text/plain"})
        self.assertEqual((status, body), (406, {"error": "Content-Type header [text/plain] is not supported", "status": 406}))
        status, _, data = self.es.request("POST", "/_bulk", raw)  # urllib adds a form content type
        self.assertEqual(status, 406)
        self.assertEqual(len(self.es.docs()), 3)

    def test_invalid_index_names_fail_their_items(self):
        cases = {
            "UPPER": "must be lowercase",
            "_under": "must not start with '_', '-', or '+'",
            "-dash": "must not start with '_', '-', or '+'",
            "+plus": "must not start with '_', '-', or '+'",
            "has space": "must not contain the following characters",
            "a*b": "must not contain the following characters",
            "a?b": "must not contain the following characters",
            'a"b': "must not contain the following characters",
            "a<b": "must not contain the following characters",
            "a>b": "must not contain the following characters",
            "a|b": "must not contain the following characters",
            "a/b": "must not contain the following characters",
            "a\\b": "must not contain the following characters",
            "a,b": "must not contain the following characters",
            "a#b": "must not contain '#'",
            "a:b": "must not contain ':'",
            ".": "must not be '.' or '..'",
            "..": "must not be '.' or '..'",
            "x" * 256: "index name is too long, (256 > 255)",
        }
        actions = []
        for name in cases:
            actions += [{"index": {"_index": name}}, {"a": 1}]
        actions += [{"index": {"_index": "x" * 255}}, {"a": 1}, {"index": {"_index": "ok.name-1_2"}}, {"a": 1},
                    {"index": {"_index": ".hidden"}}, {"a": 1}]
        status, body = self.es.bulk(actions)
        self.assertEqual(status, 200)
        for n, (name, reason) in enumerate(cases.items()):
            with self.subTest(name=name):
                item = item_of(body, n)[1]
                self.assertEqual(item["status"], 400)
                self.assertEqual(item["error"]["type"], "invalid_index_name_exception")
                self.assertTrue(item["error"]["reason"].startswith(f"Invalid index name [{name}], {reason}"), item)
                self.assertEqual(item["_index"], name)
        self.assertEqual([item_of(body, n)[1]["status"] for n in range(len(cases), len(cases) + 3)], [201] * 3)
        self.assertEqual(len(self.es.docs()), 3)

    def test_if_seq_no_and_external_versions(self):
        _, body = self.es.bulk([{"index": {"_index": "t", "_id": "a"}}, {"v": 1}])
        seq_no = item_of(body, 0)[1]["_seq_no"]
        _, body = self.es.bulk([
            {"index": {"_index": "t", "_id": "a", "if_seq_no": seq_no + 5, "if_primary_term": 1}}, {"v": 2},
            {"index": {"_index": "t", "_id": "a", "if_seq_no": seq_no, "if_primary_term": 1}}, {"v": 3},
            {"index": {"_index": "t", "_id": "e", "version": 10, "version_type": "external"}}, {"v": 4},
            {"index": {"_index": "t", "_id": "e", "version": 10, "version_type": "external"}}, {"v": 5},
        ])
        statuses = [item_of(body, n)[1]["status"] for n in range(4)]
        self.assertEqual(statuses, [409, 200, 201, 409])
        self.assertIn("required seqNo", item_of(body, 0)[1]["error"]["reason"])
        self.assertEqual(item_of(body, 2)[1]["_version"], 10)
        self.assertEqual({d["id"]: d["source"]["v"] for d in self.es.docs()}, {"a": 3, "e": 4})

    def test_filter_path_trims_the_response(self):
        _, body = self.es.bulk([{"index": {"_index": "t", "_id": "1"}}, {"n": 1},
                                {"index": {"_index": "t", "_id": "2"}}, {"n": "x"}],
                               path="/_bulk?filter_path=errors,items.*.error,items.*._id")
        self.assertEqual(set(body), {"errors", "items"})
        self.assertEqual(body["items"][0], {"index": {"_id": "1"}})
        self.assertEqual(set(body["items"][1]["index"]), {"_id", "error"})

    def test_unknown_bulk_parameter_is_rejected(self):
        status, body = self.es.bulk([{"index": {"_index": "t"}}, {"a": 1}], path="/_bulk?refersh=true")
        self.assertEqual(status, 400)
        self.assertIn("unrecognized parameter: [refersh]", body["error"]["reason"])
        self.assertEqual(self.es.bulk([{"index": {"_index": "t"}}, {"a": 1}], path="/_bulk?refresh=wait_for")[0], 200)

    def test_unknown_routes_and_methods(self):
        status, body = self.es.json("GET", "/_nope")
        self.assertEqual(status, 400)
        self.assertIn("no handler found for uri [/_nope]", body["error"])
        status, headers, data = self.es.request("GET", "/_bulk")
        self.assertEqual(status, 405)
        self.assertEqual(headers["Allow"], "POST,PUT")
        self.assertIn("Incorrect HTTP method", json.loads(data)["error"])


class MappingTests(ServerTestCase):
    def index(self, *sources, index="m"):
        actions = []
        for n, source in enumerate(sources):
            actions += [{"index": {"_index": index, "_id": f"d{n}"}}, source]
        status, body = self.es.bulk(actions)
        self.assertEqual(status, 200, body)
        return [item_of(body, n)[1] for n in range(len(sources))]

    def test_a_later_document_with_a_conflicting_type_fails_and_is_not_stored(self):
        first, conflict, coerced, fraction, boolean = self.index({"n": 1}, {"n": "abc"}, {"n": "12"}, {"n": 1.5}, {"n": True})
        self.assertEqual(first["status"], 201)
        self.assertEqual(conflict["status"], 400)
        self.assertEqual(conflict["error"]["type"], "document_parsing_exception")
        self.assertIn("failed to parse field [n] of type [long] in document with id 'd1'. Preview of field's value: 'abc'",
                      conflict["error"]["reason"])
        self.assertEqual(conflict["error"]["caused_by"]["type"], "illegal_argument_exception")
        self.assertEqual((coerced["status"], fraction["status"]), (201, 201), "numbers are coerced like Elasticsearch")
        self.assertEqual(boolean["status"], 400)
        self.assertEqual(sorted(d["id"] for d in self.es.docs()), ["d0", "d2", "d3"])

    def test_object_and_concrete_values_conflict(self):
        items = self.index({"a": {"b": 1}, "x": 1}, {"a": 1}, {"x": {"y": 1}}, {"a.b": "q"}, {"a": {"b": 2}})
        self.assertEqual([i["status"] for i in items], [201, 400, 400, 400, 201])
        self.assertIn("object mapping for [a] tried to parse field [a] as object, but found a concrete value",
                      items[1]["error"]["reason"])
        self.assertIn("failed to parse field [x] of type [long]", items[2]["error"]["reason"])
        self.assertIn("failed to parse field [a.b] of type [long]", items[3]["error"]["reason"], "dotted keys are paths")

    def test_text_fields_take_any_scalar_and_booleans_take_boolean_strings(self):
        items = self.index({"s": "x", "b": True}, {"s": 5}, {"s": False}, {"b": "false"}, {"b": "yes"}, {"b": 1})
        self.assertEqual([i["status"] for i in items], [201, 201, 201, 201, 400, 400])
        self.assertIn("Failed to parse value [yes] as only [true] or [false] are allowed.",
                      items[4]["error"]["caused_by"]["reason"])

    def test_date_detection(self):
        items = self.index({"ts": "2024-05-01T12:00:00.123Z", "year": "2015", "slash": "2015/09/02"},
                           {"ts": "not a date"}, {"ts": 1714564800000}, {"year": "hello"}, {"slash": "tomorrow"})
        self.assertEqual([i["status"] for i in items], [201, 400, 201, 201, 400])
        self.assertIn("of type [date]", items[1]["error"]["reason"])
        _, mapping = self.es.json("GET", "/m/_mapping")
        props = mapping["m"]["mappings"]["properties"]
        self.assertEqual(props["ts"]["type"], "date")
        self.assertEqual(props["year"]["type"], "text")
        self.assertEqual(props["slash"]["type"], "date")

    def test_arrays_take_the_type_of_their_elements(self):
        items = self.index({"tags": ["a", "b"], "nums": [1, 2], "objs": [{"k": 1}, {"k": 2}]},
                           {"nums": [3, "x"]}, {"mixed": [1, "y"]}, {"tags": "single"}, {"objs": {"k": 3}},
                           {"objs": [{"k": "z"}]}, {"nested": [[1, 2], [3]]})
        self.assertEqual([i["status"] for i in items], [201, 400, 400, 201, 201, 400, 201])
        self.assertIn("failed to parse field [nums] of type [long]", items[1]["error"]["reason"])
        self.assertIn("failed to parse field [objs.k] of type [long]", items[5]["error"]["reason"])

    def test_a_failed_document_adds_no_fields(self):
        self.index({"n": 1})
        (item,) = self.index({"added": "x", "n": "oops"})
        self.assertEqual(item["status"], 400)
        _, mapping = self.es.json("GET", "/m/_mapping")
        self.assertNotIn("added", mapping["m"]["mappings"]["properties"])
        self.assertNotIn("error", self.index({"added": 7})[0], "a long is fine: the field was never mapped")

    def test_mappings_are_per_index(self):
        self.index({"n": 1}, index="one")
        self.assertEqual([i["status"] for i in self.index({"n": "text"}, index="two")], [201])

    def test_strict_types_compare_json_families(self):
        self.es.configure(strict_types=True)
        items = self.index({"s": "x", "n": 1, "b": True}, {"s": 5}, {"n": 2.5}, {"n": "3"}, {"b": "true"}, {"s": "y"})
        self.assertEqual([i["status"] for i in items], [201, 400, 201, 400, 400, 201])
        self.assertIn("failed to parse field [s] of type [text]", items[1]["error"]["reason"])

    def test_total_fields_limit(self):
        self.es.configure(total_fields_limit=5)
        items = self.index({"a": 1, "b": 2, "c": 3}, {"d": 1, "e": 2, "f": 3})
        self.assertEqual([i["status"] for i in items], [201, 400])
        self.assertIn("Limit of total fields [5] has been exceeded", items[1]["error"]["reason"])

    def test_explicit_strict_mapping(self):
        status, body = self.es.json("PUT", "/strict", {"mappings": {"dynamic": "strict", "properties": {
            "level": {"type": "keyword"}, "code": {"type": "integer"}}}})
        self.assertEqual(status, 200, body)
        items = self.index({"level": "info", "code": 7}, {"level": "warn", "extra": 1}, {"code": 2**40}, index="strict")
        self.assertEqual([i["status"] for i in items], [201, 400, 400])
        self.assertEqual(items[1]["error"]["type"], "strict_dynamic_mapping_exception")
        self.assertIn("out of range for a integer", items[2]["error"]["caused_by"]["reason"])
        status, body = self.es.json("PUT", "/strict", {})
        self.assertEqual((status, body["error"]["type"]), (400, "resource_already_exists_exception"))

    def test_legacy_parsing_errors_use_the_pre_8_8_type(self):
        self.es.configure(legacy_parsing_errors=True)
        items = self.index({"status": 200}, {"status": "OK"})
        self.assertEqual(items[1]["error"]["type"], "mapper_parsing_exception")
        self.assertTrue(items[1]["error"]["reason"].startswith("failed to parse field [status] of type [long]"), items[1])
        _, body = self.es.bulk([{"create": {"_index": "logs-a-b"}}, {"no": "timestamp"}])
        error = item_of(body, 0)[1]["error"]
        self.assertEqual(error["type"], "mapper_parsing_exception")
        self.assertEqual(error["caused_by"]["reason"], "data stream timestamp field [@timestamp] is missing")

    def test_mapping_depth_and_bad_field_names(self):
        deep = {}
        node = deep
        for _ in range(25):
            node["d"] = {}
            node = node["d"]
        items = self.index(deep, {"": 1}, {"a..b": 1})
        self.assertEqual([i["status"] for i in items], [400, 400, 400])
        self.assertIn("Limit of mapping depth [20]", items[0]["error"]["reason"])


class DataStreamTests(ServerTestCase):
    def test_data_stream_takes_only_create_with_a_timestamp(self):
        self.assertEqual(self.es.json("PUT", "/_data_stream/events")[0], 200)
        status, body = self.es.json("PUT", "/_data_stream/events")
        self.assertEqual((status, body["error"]["type"]), (400, "resource_already_exists_exception"))
        self.es.bulk([{"index": {"_index": "keep", "_id": "k"}}, {"a": 1}])
        _, body = self.es.bulk([
            {"create": {"_index": "events"}}, {"@timestamp": "2024-05-01T00:00:00Z", "message": "hi"},
            {"create": {"_index": "events"}}, {"message": "no time"},
            {"index": {"_index": "events"}}, {"@timestamp": "2024-05-01T00:00:00Z"},
            {"delete": {"_index": "events", "_id": "x"}},
            {"update": {"_index": "events", "_id": "x"}}, {"doc": {"a": 1}},
            {"create": {"_index": "events"}}, {"@timestamp": "yesterday"},
            {"create": {"_index": "events"}}, {"@timestamp": 1714521600000},
        ])
        statuses = [item_of(body, n)[1]["status"] for n in range(7)]
        self.assertEqual(statuses, [201, 400, 400, 400, 400, 400, 201])
        created = item_of(body, 0)[1]
        self.assertTrue(created["_index"].startswith(".ds-events-"), created)
        self.assertTrue(created["_index"].endswith("-000001"))
        no_time = item_of(body, 1)[1]["error"]
        self.assertEqual(no_time["type"], "document_parsing_exception")
        self.assertIn("failed to parse: data stream timestamp field [@timestamp] is missing", no_time["reason"])
        self.assertEqual(no_time["caused_by"], {"type": "illegal_argument_exception",
                                                "reason": "data stream timestamp field [@timestamp] is missing"})
        for n in (2, 3, 4):
            error = item_of(body, n)[1]["error"]
            self.assertEqual(error["type"], "illegal_argument_exception")
            self.assertEqual(error["reason"], "only write ops with an op_type of create are allowed in data streams")
        self.assertIn("of type [date]", item_of(body, 5)[1]["error"]["reason"])
        docs = self.es.docs("events")
        self.assertEqual(len(docs), 2)
        self.assertEqual({d["data_stream"] for d in docs}, {"events"})
        self.assertEqual(self.es.json("GET", "/events/_count")[1]["count"], 2)
        _, streams = self.es.json("GET", "/_data_stream/events")
        self.assertEqual(streams["data_streams"][0]["indices"][0]["index_name"], created["_index"])

    def test_builtin_logs_pattern_creates_data_streams_on_first_write(self):
        _, body = self.es.bulk([
            {"index": {"_index": "logs-app-default"}}, {"@timestamp": "2024-05-01T00:00:00Z"},
            {"create": {"_index": "logs-app-default"}}, {"@timestamp": "2024-05-01T00:00:00Z"},
            {"index": {"_index": "logs-plain"}}, {"a": 1},
        ])
        self.assertEqual([item_of(body, n)[1]["status"] for n in range(3)], [400, 201, 201])
        self.assertEqual(item_of(body, 0)[1]["_index"], "logs-app-default")
        self.assertEqual(self.es.json("GET", "/_data_stream/logs-app-default")[0], 200)
        self.assertEqual(self.es.json("GET", "/_data_stream/logs-plain")[0], 404)

    def test_backing_indices_cannot_be_written_directly_with_create(self):
        _, body = self.es.bulk([{"create": {"_index": "logs-a-b"}}, {"@timestamp": "2024-05-01T00:00:00Z"}])
        backing = item_of(body, 0)[1]["_index"]
        _, body = self.es.bulk([{"create": {"_index": backing}}, {"@timestamp": "2024-05-01T00:00:00Z"}])
        self.assertIn("targeting backing indices is disallowed", item_of(body, 0)[1]["error"]["reason"])

    def test_index_template_with_data_stream(self):
        template = {"index_patterns": ["traces-*"], "data_stream": {}, "priority": 300,
                    "template": {"mappings": {"properties": {"span": {"type": "long"}}}}}
        self.assertEqual(self.es.json("PUT", "/_index_template/traces", template)[0], 200)
        _, body = self.es.bulk([{"create": {"_index": "traces-x"}}, {"@timestamp": "2024-05-01", "span": "abc"},
                                {"create": {"_index": "traces-x"}}, {"@timestamp": "2024-05-01", "span": 3}])
        self.assertEqual([item_of(body, n)[1]["status"] for n in range(2)], [400, 201])
        self.assertEqual(len(self.es.docs("traces-*")), 1)
        self.assertEqual(self.es.json("DELETE", "/_index_template/traces")[0], 200)

    def test_delete_data_stream(self):
        self.es.json("PUT", "/_data_stream/gone")
        self.es.bulk([{"create": {"_index": "gone"}}, {"@timestamp": "2024-05-01T00:00:00Z"}])
        self.assertEqual(self.es.json("DELETE", "/_data_stream/gone")[0], 200)
        self.assertEqual(self.es.docs(), [])
        self.assertEqual(self.es.json("GET", "/gone/_count")[0], 404)


class FaultInjectionTests(ServerTestCase):
    def one_doc_bulk(self, n):
        return self.es.bulk([{"index": {"_index": "f", "_id": str(n)}}, {"n": n}])

    def test_reject_every_nth_bulk_request(self):
        self.es.configure(reject_every=3)
        statuses = []
        for n in range(6):
            status, body = self.one_doc_bulk(n)
            statuses.append(status)
            if status == 429:
                self.assertEqual(body["status"], 429)
                self.assertEqual(body["error"]["type"], "es_rejected_execution_exception")
                self.assertEqual(body["error"]["root_cause"][0]["type"], "es_rejected_execution_exception")
        self.assertEqual(statuses, [200, 200, 429, 200, 200, 429])
        self.assertEqual(sorted(d["id"] for d in self.es.docs()), ["0", "1", "3", "4"])
        stats = self.es.stats()
        self.assertEqual((stats["rejected_requests_429"], stats["bulk_requests"]), (2, 6))

    def test_item_429_every_nth_item(self):
        self.es.configure(item_429_every=2)
        actions = []
        for n in range(5):
            actions += [{"index": {"_index": "f", "_id": str(n)}}, {"n": n}]
        status, body = self.es.bulk(actions)
        self.assertEqual(status, 200)
        self.assertTrue(body["errors"])
        self.assertEqual([item_of(body, n)[1]["status"] for n in range(5)], [201, 429, 201, 429, 201])
        self.assertEqual(item_of(body, 1)[1]["error"]["type"], "es_rejected_execution_exception")
        self.assertEqual(sorted(d["id"] for d in self.es.docs()), ["0", "2", "4"])
        _, body = self.es.bulk(actions[2:4])  # the count runs across requests: this is item 6
        self.assertEqual(item_of(body, 0)[1]["status"], 429)
        stats = self.es.stats()
        self.assertEqual(stats["rejected_items_429"], 3)
        self.assertEqual(stats["items_by_status"], {"201": 3, "429": 3})

    def test_down_answers_503_except_for_the_test_api(self):
        self.es.configure(down=True)
        status, body = self.one_doc_bulk(1)
        self.assert_whole_request_error(status, body, 503, "cluster_block_exception")
        self.assertEqual(self.es.json("GET", "/")[0], 503)
        self.assertEqual(self.es.json("GET", "/_test/stats")[0], 200)
        self.es.configure(down=False)
        self.assertEqual(self.one_doc_bulk(2)[0], 200)
        self.assertEqual([d["id"] for d in self.es.docs()], ["2"])
        self.assertEqual(self.es.stats()["down_503"], 2)

    def test_max_body_bytes_answers_413(self):
        self.es.configure(max_body_bytes=300)
        big = ndjson(*[x for n in range(10) for x in ({"index": {"_index": "f"}}, {"n": n})])
        self.assertGreater(len(big), 300)
        status, headers, data = self.es.request("POST", "/_bulk", big, NDJSON)
        self.assertEqual(status, 413)
        self.assertEqual(data, b"")
        compressed = gzip.compress(big)
        self.assertLess(len(compressed), 300)
        status, _, data = self.es.request("POST", "/_bulk", compressed, dict(NDJSON, **{"Content-Encoding": "gzip"}))
        self.assertEqual((status, data), (413, b""), "the limit applies to the decompressed body")
        self.assertEqual(self.one_doc_bulk(1)[0], 200)
        self.assertEqual(len(self.es.docs()), 1)
        self.assertEqual(self.es.stats()["too_large_413"], 2)

    def test_latency_delays_bulk_answers(self):
        self.es.configure(latency_ms=300)
        started = time.monotonic()
        self.assertEqual(self.one_doc_bulk(1)[0], 200)
        self.assertGreaterEqual(time.monotonic() - started, 0.3)

    def test_config_is_validated(self):
        for bad in ({"reject_evry": 1}, {"reject_every": "2"}, {"reject_every": True}, {"down": 1},
                    {"max_body_bytes": 0}, {"latency_ms": -1}):
            with self.subTest(bad=bad):
                status, body = self.es.json("POST", "/_test/config", bad)
                self.assertEqual(status, 400, body)
        status, body = self.es.request("POST", "/_test/config", b"{not json")[::2]
        self.assertEqual(status, 400)
        self.assertEqual(self.es.json("GET", "/_test/config")[1], DEFAULTS)


class InspectionTests(ServerTestCase):
    def test_count_with_lists_and_wildcards(self):
        self.es.bulk([{"index": {"_index": "a1"}}, {"x": 1}, {"index": {"_index": "a1"}}, {"x": 2},
                      {"index": {"_index": "a2"}}, {"x": 3}, {"index": {"_index": "b"}}, {"x": 4}])
        counts = {path: self.es.json("GET", path)[1]["count"] for path in
                  ("/a1/_count", "/a1,b/_count", "/a*/_count", "/_count", "/*/_count", "/zz*/_count")}
        self.assertEqual(counts, {"/a1/_count": 2, "/a1,b/_count": 3, "/a*/_count": 3, "/_count": 4,
                                  "/*/_count": 4, "/zz*/_count": 0})
        status, body = self.es.json("GET", "/missing/_count")
        self.assertEqual((status, body["error"]["type"]), (404, "index_not_found_exception"))
        self.assertEqual(self.es.json("POST", "/a1/_count", {"query": {"match_all": {}}})[1]["count"], 2)
        self.assertEqual(self.es.json("POST", "/a1/_count", {"query": {"term": {"x": 1}}})[0], 400)

    def test_docs_filter_and_order(self):
        self.es.bulk([{"index": {"_index": "b", "_id": "1"}}, {"x": 1}, {"index": {"_index": "a", "_id": "2"}}, {"x": 2},
                      {"index": {"_index": "b", "_id": "3"}}, {"x": 3}])
        self.assertEqual([d["id"] for d in self.es.docs()], ["1", "2", "3"])
        self.assertEqual([d["id"] for d in self.es.docs("b")], ["1", "3"])
        self.assertEqual(self.es.docs("nothing"), [])
        doc = self.es.docs("a")[0]
        self.assertEqual(set(doc), {"index", "data_stream", "id", "version", "seq_no", "source"})

    def test_stats_counters(self):
        first = ndjson(*[x for n in range(3) for x in ({"index": {"_index": "s", "_id": str(n)}}, {"n": n})])
        second = ndjson({"create": {"_index": "s", "_id": "0"}}, {"n": 0})
        self.es.bulk(first)
        self.es.bulk(second)
        stats = self.es.stats()
        self.assertEqual(stats["bulk_requests"], 2)
        self.assertEqual(stats["items"], 4)
        self.assertEqual(stats["items_by_status"], {"201": 3, "409": 1})
        self.assertEqual(stats["max_items_in_a_request"], 3)
        self.assertEqual(stats["bytes_received"], len(first) + len(second))
        self.assertEqual((stats["gzip_requests"], stats["rejected_requests_429"], stats["down_503"]), (0, 0, 0))

    def test_reset_forgets_everything(self):
        self.es.bulk([{"index": {"_index": "r"}}, {"n": 1}, {"create": {"_index": "logs-r-r"}}, {"@timestamp": "2024-01-01"}])
        self.assertEqual(self.es.json("POST", "/_test/reset")[1], {"acknowledged": True})
        self.assertEqual(self.es.docs(), [])
        self.assertEqual(self.es.stats()["bulk_requests"], 0)
        self.assertEqual(self.es.json("GET", "/_data_stream/logs-r-r")[0], 404)
        _, body = self.es.bulk([{"index": {"_index": "r"}}, {"n": "now text"}])
        self.assertFalse(body["errors"], "the old mapping is gone")

    def test_get_doc_and_index_existence(self):
        self.es.bulk([{"index": {"_index": "g", "_id": "1"}}, {"x": 1}])
        status, body = self.es.json("GET", "/g/_doc/1")
        self.assertEqual((status, body["found"], body["_source"], body["_version"]), (200, True, {"x": 1}, 1))
        self.assertEqual(self.es.json("GET", "/g/_doc/2")[0], 404)
        self.assertEqual(self.es.request("HEAD", "/g")[0], 200)
        self.assertEqual(self.es.request("HEAD", "/nope")[0], 404)
        self.assertEqual(self.es.json("DELETE", "/g")[0], 200)
        self.assertEqual(self.es.request("HEAD", "/g")[0], 404)

    def test_cluster_health(self):
        status, body = self.es.json("GET", "/_cluster/health")
        self.assertEqual((status, body["status"]), (200, "green"))


class RobustnessTests(ServerTestCase):
    def raw_exchange(self, data):
        with socket.create_connection(("127.0.0.1", self.es.port), timeout=10) as s:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            chunks = []
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        return b"".join(chunks)

    def test_bad_input_never_crashes_the_server(self):
        inputs = [
            b"\x00\x01\x02 garbage\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n",
            b"POST /_bulk HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\nContent-Length: 10\r\n\r\nabc",
            b"POST /_bulk HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        ]
        for data in inputs:
            with self.subTest(data=data):
                self.raw_exchange(data)
        bodies = [
            b"\xff\xfe\xfd\n",
            b"\n\n\n",
            b"null\n",
            b'{"index": null}\n',
            b'{"index": {"_index": ["a"]}}\n{}\n',
            b'{"index": {"_index": "t", "if_seq_no": "x", "if_primary_term": 1}}\n{}\n',
            b'{"index": {"_index": "t"}}\n' + b"[" * 100000 + b"\n",
            b'{"index": {"_index": "t"}}\n{"a": NaN}\n',
            b'{"index": {"_index": "t"}}\n{"a": 1e999}\n',
            b'{"index": {"_index": "t"}}\n{"a": 123456789012345678901234567890}\n',
            b'{"update": {"_index": "t", "_id": "1"}}\n{"script": "ctx._source.x = 1"}\n',
            b'{"update": {"_index": "t", "_id": "1"}}\n{"doc": 5}\n',
            b'{"index": {"_index": "t", "version_type": "weird", "version": 1}}\n{}\n',
            b'{"index": {"_index": "t", "op_type": "upsert"}}\n{}\n',
        ]
        for body in bodies:
            with self.subTest(body=body[:60]):
                status, _, data = self.es.request("POST", "/_bulk", body, NDJSON)
                self.assertIn(status, (200, 400), data[:300])
                json.loads(data)
        for path, body in (("/_test/config", b"[1]"), ("/_index_template/x", b"{}"), ("/idx", b"[]"),
                           ("/_count", b"{bad"), ("/_data_stream/UPPER", b"")):
            with self.subTest(path=path):
                status, _, data = self.es.request("PUT" if path != "/_count" else "POST", path, body,
                                                  {"Content-Type": "application/json"})
                self.assertIn(status, (400, 405), data)
        self.assertEqual(self.es.json("GET", "/")[0], 200)
        self.assertNotIn("Traceback", self.es.log(), "no request reached the 500 handler")

    def test_chunked_request_body(self):
        payload = ndjson({"index": {"_index": "c", "_id": "1"}}, {"a": 1})
        chunked = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (payload[:10], payload[10:])) + b"0\r\n\r\n"
        response = self.raw_exchange(
            b"POST /_bulk HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n"
            b"Connection: close\r\n\r\n" + chunked
        )
        self.assertTrue(response.startswith(b"HTTP/1.1 200"), response[:200])
        self.assertEqual([d["id"] for d in self.es.docs()], ["1"])

    def test_keep_alive_connections_serve_many_requests(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.es.port, timeout=10)
        try:
            for n in range(5):
                conn.request("POST", "/_bulk", ndjson({"index": {"_index": "k", "_id": str(n)}}, {"n": n}), NDJSON)
                response = conn.getresponse()
                self.assertEqual(response.status, 200)
                json.loads(response.read())
        finally:
            conn.close()
        self.assertEqual(len(self.es.docs()), 5)

    def test_concurrent_bulks(self):
        errors = []

        def worker(w):
            try:
                for b in range(10):
                    actions = []
                    for d in range(5):
                        actions += [{"index": {"_index": "cc", "_id": f"{w}-{b}-{d}"}}, {"w": w}]
                    status, body = self.es.bulk(actions)
                    if status != 200 or body["errors"]:
                        errors.append(body)
            except Exception as e:  # reported below
                errors.append(repr(e))

        threads = [threading.Thread(target=worker, args=(w,)) for w in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        docs = self.es.docs("cc")
        self.assertEqual(len(docs), 400)
        self.assertEqual(len({d["seq_no"] for d in docs}), 400)
        self.assertEqual(self.es.stats()["bulk_requests"], 80)

    def test_one_log_line_per_request(self):
        before = self.es.log().count("GET /_cluster/health")
        for _ in range(3):
            self.es.json("GET", "/_cluster/health")
        deadline = time.monotonic() + 5
        while self.es.log().count("GET /_cluster/health") < before + 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertEqual(self.es.log().count("GET /_cluster/health"), before + 3)


class AuthTests(ServerTestCase):
    server_args = ("--basic", "elastic:changeme", "--api-key", "a2V5aWQ6c2VjcmV0")

    def auth_header(self, user, password):
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}

    def test_missing_or_wrong_credentials_are_401(self):
        raw = ndjson({"index": {"_index": "t"}}, {"a": 1})
        for headers, reason in (({}, "missing authentication credentials for REST request [/_bulk]"),
                                (self.auth_header("elastic", "wrong"), "unable to authenticate user [elastic]"),
                                ({"Authorization": "ApiKey nope"}, "unable to authenticate with provided credentials"),
                                ({"Authorization": "Bearer x"}, "unable to authenticate")):
            with self.subTest(headers=headers):
                status, response_headers, data = self.es.request("POST", "/_bulk", raw, dict(NDJSON, **headers))
                self.assertEqual(status, 401)
                body = json.loads(data)
                self.assertEqual(body["error"]["type"], "security_exception")
                self.assertIn(reason, body["error"]["reason"])
                challenges = response_headers.get_all("WWW-Authenticate")
                self.assertIn("ApiKey", challenges)
                self.assertTrue(any(c.startswith("Basic ") for c in challenges))
        self.assertEqual(self.es.docs(), [])
        self.assertEqual(self.es.stats()["unauthorized_401"], 4)

    def test_good_credentials_are_accepted(self):
        raw = ndjson({"index": {"_index": "t"}}, {"a": 1})
        self.assertEqual(self.es.request("POST", "/_bulk", raw, dict(NDJSON, **self.auth_header("elastic", "changeme")))[0], 200)
        self.assertEqual(self.es.request("POST", "/_bulk", raw, dict(NDJSON, Authorization="ApiKey a2V5aWQ6c2VjcmV0"))[0], 200)
        self.assertEqual(self.es.request("GET", "/", None, self.auth_header("elastic", "changeme"))[0], 200)
        self.assertEqual(self.es.request("GET", "/")[0], 401)
        self.assertEqual(len(self.es.docs()), 2, "/_test/* needs no credentials")


class CommandLineTests(unittest.TestCase):
    def test_options_set_the_initial_config(self):
        es = ServerProcess("--reject-every", "2", "--item-429-every", "5", "--strict-types", "--latency-ms", "1",
                           "--max-body-bytes", "5000", "--total-fields-limit", "50",
                           "--data-stream-pattern", "events-*", "--no-builtin-templates")
        try:
            self.assertEqual(es.json("GET", "/_test/config")[1], {
                "reject_every": 2, "item_429_every": 5, "down": False, "max_body_bytes": 5000, "latency_ms": 1,
                "strict_types": True, "total_fields_limit": 50, "legacy_parsing_errors": False,
                "item_500_every": 0, "item_503_every": 0, "drop_response_next": 0, "forbidden_indices": [],
            })
            statuses = [es.bulk([{"create": {"_index": "events-a"}}, {"@timestamp": "2024-01-01"}])[0] for _ in range(4)]
            self.assertEqual(statuses, [200, 429, 200, 429])
            self.assertEqual({d["data_stream"] for d in es.docs()}, {"events-a"})
            es.configure(reject_every=0)
            _, body = es.bulk([{"index": {"_index": "logs-a-b"}}, {"x": 1}])
            self.assertEqual(item_of(body, 0)[1]["status"], 201, "built-in templates are off")
        finally:
            es.stop()

    def test_down_flag_and_port_file(self):
        es = ServerProcess("--down")
        try:
            with open(es.port_file, encoding="utf-8") as f:
                self.assertEqual(f.read().strip(), str(es.port))
            self.assertEqual(es.json("GET", "/")[0], 503)
        finally:
            es.stop()

    def test_bad_arguments_exit_without_a_port_file(self):
        with tempfile.TemporaryDirectory() as d:
            port_file = os.path.join(d, "port")
            result = subprocess.run([sys.executable, SERVER, "--port", "0", "--port-file", port_file, "--basic", "nocolon"],
                                    capture_output=True, timeout=30)
            self.assertNotEqual(result.returncode, 0)
            self.assertFalse(os.path.exists(port_file))


if __name__ == "__main__":
    unittest.main()
