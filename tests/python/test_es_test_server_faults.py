"""Tests of the Elasticsearch test double's per-item failures, index write blocks, data stream
rollover, withheld answers and nodes that stop listening (run with test_es_test_server.py):

    python3 -m unittest discover -s tests/python -p 'test_es_test_server*.py'
"""

import http.client
import json
import os
import socket
import tempfile
import unittest
import urllib.request

from test_es_test_server import NDJSON, ServerProcess, ServerTestCase, item_of, ndjson


def doc(n, index="f"):
    return [{"index": {"_index": index, "_id": str(n)}}, {"n": n}]


class ItemFailureTests(ServerTestCase):
    def test_item_503_and_500_every_nth_item_write_nothing(self):
        self.es.configure(item_503_every=3, item_500_every=4)
        _, body = self.es.bulk([line for n in range(6) for line in doc(n)])
        self.assertTrue(body["errors"])
        statuses = [item_of(body, n)[1]["status"] for n in range(6)]
        # Items 3 and 6 by the 503 phase; the 500 phase counts the items that passed it, so its 4th
        # is item 5.
        self.assertEqual(statuses, [201, 201, 503, 201, 500, 503])
        self.assertEqual(item_of(body, 2)[1]["error"]["type"], "unavailable_shards_exception")
        self.assertIn("primary shard is not active", item_of(body, 2)[1]["error"]["reason"])
        self.assertEqual(item_of(body, 4)[1]["error"]["type"], "exception")
        self.assertEqual(sorted(d["id"] for d in self.es.docs("f")), ["0", "1", "3"])
        stats = self.es.stats()
        self.assertEqual((stats["injected_items_503"], stats["injected_items_500"]), (2, 1))

    def test_forbidden_indices_refuse_items_with_a_security_exception_before_auto_create(self):
        self.es.configure(forbidden_indices=["secret-*"])
        _, body = self.es.bulk(doc(1, "secret-2025") + doc(2, "open"))
        key, item = item_of(body, 0)
        self.assertEqual((key, item["status"], item["error"]["type"]), ("index", 403, "security_exception"))
        self.assertIn("is unauthorized for user [elastic]", item["error"]["reason"])
        self.assertIn("on indices [secret-2025]", item["error"]["reason"])
        self.assertEqual(item_of(body, 1)[1]["status"], 201)
        self.assertEqual(self.es.json("HEAD", "/secret-2025")[0], 404, "no index was auto-created")
        self.assertEqual(self.es.stats()["forbidden_items_403"], 1)

    def test_a_write_block_refuses_items_until_it_is_lifted(self):
        self.assertEqual(self.es.bulk(doc(1, "blocked"))[0], 200)
        status, body = self.es.json("PUT", "/blocked/_settings", {"index": {"blocks": {"write": True}}})
        self.assertEqual((status, body), (200, {"acknowledged": True}))
        _, settings = self.es.json("GET", "/blocked/_settings")
        self.assertEqual(settings["blocked"]["settings"]["index"]["blocks"], {"write": "true"})
        _, body = self.es.bulk(doc(2, "blocked"))
        _, item = item_of(body, 0)
        self.assertEqual((item["status"], item["error"]["type"]), (403, "cluster_block_exception"))
        self.assertEqual(item["error"]["reason"], "index [blocked] blocked by: [FORBIDDEN/8/index write (api)];")
        self.assertEqual(self.es.json("PUT", "/blocked/_settings", {"index.blocks.write": False})[0], 200)
        self.assertEqual(item_of(self.es.bulk(doc(2, "blocked"))[1], 0)[1]["status"], 201)
        self.assertEqual(self.es.stats()["blocked_items_403"], 1)
        status, body = self.es.json("PUT", "/blocked/_settings", {"index": {"number_of_replicas": 2}})
        self.assertEqual(status, 400, "unsupported settings are refused, not ignored")

    def test_a_data_stream_rolls_over_to_a_new_write_index(self):
        first = [{"create": {"_index": "logs-app-default", "_id": "a"}}, {"@timestamp": "2026-01-01", "n": 1}]
        self.assertEqual(item_of(self.es.bulk(first)[1], 0)[1]["status"], 201)
        status, body = self.es.json("POST", "/logs-app-default/_rollover")
        self.assertEqual(status, 200, body)
        self.assertTrue(body["rolled_over"])
        self.assertRegex(body["old_index"], r"^\.ds-logs-app-default-\d{4}\.\d{2}\.\d{2}-000001$")
        self.assertRegex(body["new_index"], r"^\.ds-logs-app-default-\d{4}\.\d{2}\.\d{2}-000002$")
        _, streams = self.es.json("GET", "/_data_stream/logs-app-default")
        stream = streams["data_streams"][0]
        self.assertEqual(stream["generation"], 2)
        self.assertEqual([i["index_name"] for i in stream["indices"]], [body["old_index"], body["new_index"]])
        second = [{"create": {"_index": "logs-app-default", "_id": "b"}}, {"@timestamp": "2026-01-01", "n": 2}]
        _, answer = self.es.bulk(second)
        self.assertEqual(item_of(answer, 0)[1]["_index"], body["new_index"], "writes go to the new write index")
        # Ids are unique per backing index: the same id again lands in the new one, as in Elasticsearch.
        _, again = self.es.bulk(first)
        self.assertEqual((item_of(again, 0)[1]["status"], item_of(again, 0)[1]["_index"]), (201, body["new_index"]))
        self.assertEqual(len(self.es.docs("logs-app-default")), 3)
        self.assertEqual(self.es.json("POST", "/f/_rollover")[0], 404)
        self.es.bulk(doc(1))
        status, body = self.es.json("POST", "/f/_rollover")
        self.assertEqual((status, body["error"]["type"]), (400, "illegal_argument_exception"))

    def test_a_withheld_answer_closes_the_connection_after_the_write(self):
        self.es.configure(drop_response_next=1)
        connection = http.client.HTTPConnection("127.0.0.1", self.es.port, timeout=10)
        connection.request("POST", "/_bulk", ndjson(*doc(1), *doc(2)), NDJSON)
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
            connection.getresponse()
        connection.close()
        self.assertEqual(len(self.es.docs("f")), 2, "written before the answer was withheld")
        _, body = self.es.bulk([{"create": {"_index": "f", "_id": "1"}}, {"n": 1}])
        self.assertEqual(item_of(body, 0)[1]["status"], 409, "the resend is a version conflict")
        stats = self.es.stats()
        self.assertEqual((stats["dropped_responses"], stats["dropped_items"]), (1, 2))
        self.assertEqual(self.es.json("GET", "/_test/config")[1]["drop_response_next"], 0, "once only")


class NodeTests(unittest.TestCase):
    def test_a_stopped_node_refuses_connections_and_comes_back_with_the_data(self):
        scratch = tempfile.TemporaryDirectory(prefix="es-test-server-nodes-")
        self.addCleanup(scratch.cleanup)
        control_file = os.path.join(scratch.name, "control-port")
        es = ServerProcess("--nodes", "2", "--control-port-file", control_file)
        try:
            # Written before the port file, which ServerProcess waited for.
            with open(control_file, encoding="utf-8") as f:
                control = f"http://127.0.0.1:{int(f.read())}"

            def call(method, path):
                req = urllib.request.Request(control + path, method=method)
                with urllib.request.urlopen(req, timeout=30) as resp:
                    return json.loads(resp.read())

            nodes = call("GET", "/_test/nodes")["nodes"]
            self.assertEqual([(n["node"], n["listening"]) for n in nodes], [(0, True), (1, True)])
            self.assertEqual(nodes[0]["port"], es.port)
            other = ServerProcess.__new__(ServerProcess)
            other.url = f"http://127.0.0.1:{nodes[1]['port']}"
            self.assertEqual(es.bulk(doc(1))[0], 200)
            self.assertEqual(call("POST", "/_test/nodes/0/stop")["listening"], False)
            with self.assertRaises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", es.port), timeout=5).close()
            self.assertEqual(ServerProcess.bulk(other, doc(2))[0], 200, "the other node serves the same cluster")
            self.assertEqual(call("GET", "/_test/stats")["bulk_requests_by_node"], {"0": 1, "1": 1})
            self.assertEqual(call("POST", "/_test/nodes/0/start"), {"node": 0, "port": es.port, "listening": True})
            self.assertEqual(sorted(d["id"] for d in es.docs("f")), ["1", "2"])
            self.assertEqual(es.json("GET", "/")[0], 200)
            status, _ = ServerProcess.json(other, "GET", "/_test/nodes/1/stop")
            self.assertEqual(status, 404, "GET does not stop anything")
        finally:
            es.stop()


if __name__ == "__main__":
    unittest.main()
