"""Produces --count records with acks=all and idempotence, appending each acknowledged record as
`value partition offset` to --acked (flushed per line), so a test can kill the broker mid-run
and later check that everything acknowledged survived."""

import argparse
import sys

from confluent_kafka import Producer

parser = argparse.ArgumentParser()
parser.add_argument("--bootstrap", required=True)
parser.add_argument("--topic", required=True)
parser.add_argument("--count", type=int, required=True)
parser.add_argument("--acked", required=True)
args = parser.parse_args()

out = open(args.acked, "a", buffering=1)
failed = 0


def on_delivery(err, msg):
    global failed
    if err is not None:
        failed += 1
        return
    out.write(f"{msg.value().decode()} {msg.partition()} {msg.offset()}\n")


producer = Producer({
    "bootstrap.servers": args.bootstrap,
    "acks": "all",
    "enable.idempotence": True,
    "linger.ms": 2,
    "message.timeout.ms": 60000,
    "reconnect.backoff.ms": 50,
    "reconnect.backoff.max.ms": 500,
})
for i in range(args.count):
    value = f"rec-{i:09d}"
    while True:
        try:
            producer.produce(args.topic, key=f"k{i % 11}", value=value, on_delivery=on_delivery)
            break
        except BufferError:
            producer.poll(0.05)
    if i % 100 == 0:
        producer.poll(0)
left = producer.flush(90)
out.close()
print(f"produced {args.count}, failed {failed}, undelivered {left}")
sys.exit(0)
