"""Produces --count records with acks=all and idempotence, values `<prefix>-<n>`, appending each
acknowledged record as `value partition offset` to --acked with one write(2) per line, so a test
can kill the broker, the disk's power or this process at any moment, trust every complete line,
and later check that everything acknowledged survived. --rate paces it (records per second), so
a fault can land while writes still flow."""

import argparse
import os
import sys
import time

from confluent_kafka import Producer

parser = argparse.ArgumentParser()
parser.add_argument("--bootstrap", required=True)
parser.add_argument("--topic", required=True)
parser.add_argument("--count", type=int, default=10_000_000)
parser.add_argument("--acked", required=True)
parser.add_argument("--prefix", default="rec")
parser.add_argument("--rate", type=int, default=0, help="records per second at most (0: as fast as it goes)")
args = parser.parse_args()

out = os.open(args.acked, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
failed = 0
errors = {}


def on_delivery(err, msg):
    global failed
    if err is not None:
        failed += 1
        errors[str(err)] = errors.get(str(err), 0) + 1
        return
    os.write(out, f"{msg.value().decode()} {msg.partition()} {msg.offset()}\n".encode())


producer = Producer({
    "bootstrap.servers": args.bootstrap,
    "acks": "all",
    "enable.idempotence": True,
    "linger.ms": 2,
    "message.timeout.ms": 60000,
    "reconnect.backoff.ms": 50,
    "reconnect.backoff.max.ms": 500,
})
start = time.monotonic()
for i in range(args.count):
    if args.rate > 0:
        ahead = i / args.rate - (time.monotonic() - start)
        if ahead > 0:
            producer.poll(ahead)
    value = f"{args.prefix}-{i:09d}"
    while True:
        try:
            producer.produce(args.topic, key=f"k{i % 11}", value=value, on_delivery=on_delivery)
            break
        except BufferError:
            producer.poll(0.05)
    if i % 100 == 0:
        producer.poll(0)
left = producer.flush(90)
os.close(out)
for error, count in errors.items():
    print(f"{count} deliveries failed: {error}", file=sys.stderr)
print(f"produced {args.count}, failed {failed}, undelivered {left}")
sys.exit(0)
