#!/usr/bin/env python3
"""Helpers of scripts/bench_sinks.sh.

  generate N JSON_OUT LP_OUT   N metric records in the agent's record format, each line
                               "key<TAB>JSON" with the host name as the key (as the agent keys
                               metrics), for `kcat -K '\t'`
                               and the same points as InfluxDB line protocol, byte for byte what
                               the sink writes (50 hosts x 8 CPUs, one point per series per second)
  logs N JSON_OUT              N log records as the agent writes file lines, keyed by host and
                               path as the agent keys them
  direct URL DB FILE BATCH     writes FILE's lines to InfluxDB's /write in batches of BATCH lines
                               over one keep-alive connection, one request at a time (what the
                               sink does); prints points and seconds
  watch LOG METRICS_URL SINK N PID
                               times a sink as the direct writer is timed: from its "partitions
                               assigned" log line (the file read every 2 ms) until its
                               forwarded-records counter reaches N (read over one keep-alive
                               connection, ever more often as the end nears, down to 5 ms);
                               prints seconds. Exits 1 if PID dies first.
"""
import http.client
import json
import sys
import threading
import time
import urllib.parse

BASE_MS = 1_795_431_600_000


def generate(n, json_out, lp_out):
    with open(json_out, "w") as js, open(lp_out, "w") as lp:
        for i in range(n):
            series, second = i % 400, i // 400
            host, cpu = f"h{series // 8:02d}", f"cpu{series % 8}"
            ms = BASE_MS + second * 1000
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"
            user, system = (i * 7 % 1000) / 10 + 0.25, (i * 3 % 500) / 10 + 0.5
            idle = 100.0 - user / 2 - system / 2
            # Members in the agent's order: its JSON maps, the record's and its tags' and
            # fields', are ordered by key.
            fields = {"runnable": i % 17, "usage_idle": idle, "usage_system": system, "usage_user": user}
            js.write(host + "\t" + json.dumps({
                "@timestamp": stamp, "name": "cpu", "tags": {"cpu": cpu}, "fields": fields,
                "host": {"name": host}, "input": {"type": "host_metrics", "name": "host"},
                "event": {"schema": 1, "kind": "metric"}}, separators=(",", ":"), sort_keys=True) + "\n")
            # Fields in the order the sink writes them: the record's key order (sorted).
            lp.write(f"cpu,cpu={cpu},host={host} runnable={i % 17}i,usage_idle={idle!r},"
                     f"usage_system={system!r},usage_user={user!r} {ms}\n")


def logs(n, json_out):
    with open(json_out, "w") as js:
        for i in range(n):
            ms = BASE_MS + i
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"
            js.write(f"web-{i % 20}/var/log/nginx/access.log\t" + json.dumps({
                "@timestamp": stamp, "event": {"kind": "log", "schema": 1}, "host": {"name": f"web-{i % 20}"},
                "input": {"name": "nginx", "type": "file"},
                "log": {"file": {"device": 2049, "fingerprint": "0a0b0c0d", "inode": 1000 + i % 20,
                                 "path": "/var/log/nginx/access.log"}, "offset": i * 190},
                "message": f"10.0.{i % 256}.{i % 200} - - [23/Nov/2026:11:00:00 +0000] \"GET /api/items/{i} HTTP/1.1\" "
                           f"200 {i % 5000} \"-\" \"Mozilla/5.0\" {i % 1000 / 1000:.3f}"},
                separators=(",", ":")) + "\n")


def direct(url, db, path, batch, in_flight):
    """Writes the line protocol in batches over `in_flight` keep-alive connections, each with one
    request at a time (as the sink with max_in_flight = in_flight); prints lines and seconds."""
    parsed = urllib.parse.urlparse(url)
    query = urllib.parse.urlencode({"db": db, "precision": "ms"})
    with open(path, "rb") as f:
        lines = f.readlines()
    bodies = [b"".join(lines[i:i + batch]) for i in range(0, len(lines), batch)]
    next_body = iter(bodies)
    lock = threading.Lock()
    failures = []

    def writer():
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
        while True:
            with lock:
                body = next(next_body, None)
            if body is None or failures:
                return
            conn.request("POST", f"/write?{query}", body=body, headers={"Content-Type": "text/plain"})
            response = conn.getresponse()
            text = response.read()
            if response.status != 204:
                failures.append(f"InfluxDB answered {response.status}: {text[:300]!r}")

    threads = [threading.Thread(target=writer) for _ in range(in_flight)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    if failures:
        sys.exit(failures[0])
    print(f"{len(lines)}\t{elapsed:.3f}")


def watch(log, metrics_url, sink, count, pid):
    """Polling every 100 ms with a curl per poll, as this script's shell part did, put up to
    0.1 s (≈ 10 % of a run) on the sink's time that the direct writer, timed to its last response,
    never had. Polling every 5 ms throughout cost the sink ~5 % of a core (each poll renders its
    metrics): each wait is half the time the rate so far says is left, between 5 and 100 ms."""
    import os

    def alive():
        try:
            os.kill(pid, 0)
            return True
        except OSError:
            return False

    deadline = time.monotonic() + 60
    while True:
        try:
            with open(log, "rb") as f:
                if b"partitions assigned" in f.read():
                    break
        except FileNotFoundError:
            pass
        if not alive() or time.monotonic() > deadline:
            sys.exit("the sink exited or was never assigned its partitions")
        time.sleep(0.002)
    start = time.monotonic()
    parsed = urllib.parse.urlparse(metrics_url)
    name = f'millrace_sink_records_forwarded_total{{sink="{sink}"}}'.encode()
    conn = None
    while True:
        try:
            conn = conn or http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
            conn.request("GET", parsed.path or "/metrics")
            body = conn.getresponse().read()
        except (OSError, http.client.HTTPException):
            conn, body = None, b""
        forwarded = 0
        for line in body.splitlines():
            if line.startswith(name + b" "):
                forwarded = int(float(line.split()[1]))
        if forwarded >= count:
            break
        if not alive():
            sys.exit("the sink exited")
        elapsed = time.monotonic() - start
        left = (count - forwarded) * elapsed / forwarded if forwarded else 1.0
        time.sleep(min(0.1, max(0.005, left / 2)))
    print(f"{time.monotonic() - start:.3f}")


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "generate":
        generate(int(sys.argv[2]), sys.argv[3], sys.argv[4])
    elif cmd == "logs":
        logs(int(sys.argv[2]), sys.argv[3])
    elif cmd == "direct":
        direct(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]))
    elif cmd == "watch":
        watch(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]))
    else:
        sys.exit(__doc__)
