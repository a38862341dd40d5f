#!/usr/bin/env python3
"""Rebalance-time benchmark: a group of 3 confluent-kafka members on a 6-partition topic; time
from SIGKILL of one member (no LeaveGroup: detected by session timeout) and from a graceful
close of one member (LeaveGroup) until the survivors own every partition again, taken from the
members' own assignment-callback timestamps.

  python3 scripts/bench_rebalance.py --bin target/release/millrace [--rounds 3] [--session-timeout-ms 6000]
"""

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKER = os.path.join(ROOT, "tests", "python", "group_worker.py")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def owned(path):
    last = None
    try:
        for line in open(path):
            if line.startswith("OWNED "):
                _, ts, *rest = line.split(" ")
                parts = rest[0].strip() if rest else ""
                last = (int(ts), {int(p) for p in parts.split(",") if p})
    except FileNotFoundError:
        pass
    return last


def wait_cover(paths, partitions, deadline_s=60):
    end = time.time() + deadline_s
    while time.time() < end:
        states = [owned(p) for p in paths]
        if all(states):
            sets = [s for _, s in states]
            if sum(len(s) for s in sets) == partitions and set().union(*sets) == set(range(partitions)):
                return max(ts for ts, _ in states)
        time.sleep(0.02)
    raise SystemExit(f"no full coverage within {deadline_s}s: {[owned(p) for p in paths]}")


def round_trip(bootstrap, work, strategy, session_ms, n):
    group = f"bench-{strategy}-{n}"
    outs = [os.path.join(work, f"{group}-{i}.log") for i in range(3)]
    procs = [
        subprocess.Popen([sys.executable, WORKER, "--bootstrap", bootstrap, "--group", group, "--topic", "rebalance",
                          "--strategy", strategy, "--session-timeout-ms", str(session_ms), "--out", out],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for out in outs
    ]
    try:
        wait_cover(outs, 6)
        time.sleep(1)
        killed_at = int(time.time() * 1000)
        procs[0].kill()
        crash_ms = wait_cover(outs[1:], 6) - killed_at
        time.sleep(1)
        left_at = int(time.time() * 1000)
        procs[1].send_signal(signal.SIGTERM)
        leave_ms = wait_cover(outs[2:], 6) - left_at
        return crash_ms, leave_ms
    finally:
        for p in procs:
            p.kill()
            p.wait()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "millrace"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--session-timeout-ms", type=int, default=6000)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="millrace-rebalance-")
    port, admin = free_port(), free_port()
    bootstrap = f"127.0.0.1:{port}"
    broker = subprocess.Popen([args.bin, "broker", "--data-dir", os.path.join(work, "data"), "--listen", bootstrap,
                               "--admin-listen", f"127.0.0.1:{admin}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={**os.environ, "MILLRACE_LOG": "warn"})
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        subprocess.run([args.bin, "topic", "create", "rebalance", "--partitions", "6", "--bootstrap", bootstrap],
                       check=True, stdout=subprocess.DEVNULL)
        print(f"session.timeout.ms={args.session_timeout_ms}, heartbeat.interval.ms=500, 3 members, 6 partitions, "
              f"{args.rounds} rounds")
        for strategy in ["range", "cooperative-sticky"]:
            crashes, leaves = [], []
            for n in range(args.rounds):
                crash_ms, leave_ms = round_trip(bootstrap, work, strategy, args.session_timeout_ms, n)
                crashes.append(crash_ms)
                leaves.append(leave_ms)
            print(f"{strategy}: member killed -> survivors own all partitions: median {statistics.median(crashes)} ms "
                  f"(runs {crashes}); graceful leave: median {statistics.median(leaves)} ms (runs {leaves})")
    finally:
        broker.terminate()
        broker.wait()


if __name__ == "__main__":
    main()
