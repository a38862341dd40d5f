"""Produces records with acks=all and idempotence until killed (or --count is reached), values
`<prefix>-<n>`, appending each acknowledged one as `value partition offset` to --acked, one write
per line, so a power-loss test can kill it at any moment and trust every complete line."""

import argparse
import os
import time

from confluent_kafka import Producer

parser = argparse.ArgumentParser()
parser.add_argument("--bootstrap", required=True)
parser.add_argument("--topic", required=True)
parser.add_argument("--prefix", required=True)
parser.add_argument("--acked", required=True)
parser.add_argument("--count", type=int, default=10_000_000)
parser.add_argument("--rate", type=int, default=5000, help="records per second at most")
args = parser.parse_args()

out = os.open(args.acked, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)


def on_delivery(err, msg):
    if err is None:
        # One write(2) per line: a kill leaves whole lines only.
        os.write(out, f"{msg.value().decode()} {msg.partition()} {msg.offset()}\n".encode())


producer = Producer({
    "bootstrap.servers": args.bootstrap,
    "acks": "all",
    "enable.idempotence": True,
    "linger.ms": 5,
    "message.timeout.ms": 30000,
    "reconnect.backoff.ms": 50,
    "reconnect.backoff.max.ms": 500,
})
start = time.monotonic()
for i in range(args.count):
    # A steady load, so the records acknowledged between two cuts stay countable.
    ahead = i / args.rate - (time.monotonic() - start)
    if ahead > 0:
        producer.poll(ahead)
    value = f"{args.prefix}-{i:09d}"
    while True:
        try:
            producer.produce(args.topic, key=f"k{i % 13}", value=value, on_delivery=on_delivery)
            break
        except BufferError:
            producer.poll(0.05)
    if i % 100 == 0:
        producer.poll(0)
producer.flush(60)
