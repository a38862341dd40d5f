#!/usr/bin/env python3
"""Latency of sparse acks=all writes, as an agent on a quiet web server sends them.

Writes RECORDS records of 100 B one at a time with a random pause of 0 to MAX_GAP seconds before
each (acks=all, idempotent, librdkafka's defaults otherwise: linger.ms=5) and waits for each
delivery report before the next pause, so every write meets a cluster that has been idle for a
while: followers long-polling the leader, or between two fetches. Prints one line in the format
of `millrace bench` (produce_latency, p50/p99/max in ms), latency being produce() → delivery report.

    bench_sparse.py --bootstrap HOST:PORT --topic rf3 [--records 80] [--max-gap 1.2] [--seed 1]
"""

import argparse
import random
import statistics
import sys
import time

from confluent_kafka import Producer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--records", type=int, default=80)
    parser.add_argument("--max-gap", type=float, default=1.2, help="seconds")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    producer = Producer({"bootstrap.servers": args.bootstrap, "acks": "all", "enable.idempotence": True})
    payload = b"x" * 100
    latencies, errors = [], []

    def deliver(sent):
        def report(error, _message):
            if error is not None:
                errors.append(str(error))
            latencies.append((time.monotonic() - sent) * 1000)

        return report

    # A first write the latency leaves out: it carries the producer id request and the metadata.
    producer.produce(args.topic, payload, on_delivery=deliver(time.monotonic()))
    producer.flush(30)
    latencies.clear()
    for _ in range(args.records):
        time.sleep(rng.uniform(0, args.max_gap))
        done = len(latencies) + 1
        producer.produce(args.topic, payload, on_delivery=deliver(time.monotonic()))
        deadline = time.monotonic() + 30
        while len(latencies) < done and time.monotonic() < deadline:
            producer.poll(0.05)
        if len(latencies) < done:
            print(f"a record was not delivered within 30 s on {args.topic}", file=sys.stderr)
            return 1
    if errors:
        print(f"{len(errors)} delivery errors on {args.topic}: {errors[0]}", file=sys.stderr)
        return 1
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    print(
        f"produce_latency\trecord_size=100\tacks=all\trate=sparse\trecords={len(ordered)}"
        f"\tp50_ms={statistics.median(ordered):.2f}\tp99_ms={p99:.2f}\tmax_ms={ordered[-1]:.2f}"
        f"\tover_20_ms={sum(1 for x in ordered if x > 20)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
