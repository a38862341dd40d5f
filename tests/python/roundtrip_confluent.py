"""confluent-kafka (librdkafka) producer and consumer round trip against a broker."""

import argparse
import time

from confluent_kafka import Consumer, Producer, TopicPartition, KafkaException

from roundtrip_check import fail, verify

parser = argparse.ArgumentParser()
parser.add_argument("--bootstrap", required=True)
parser.add_argument("--topic", required=True)
parser.add_argument("--partitions", type=int, required=True)
parser.add_argument("--count", type=int, default=2000)
parser.add_argument("--compression", default="none")
parser.add_argument("--idempotence", action="store_true")
parser.add_argument("--acks", default="all")
parser.add_argument("--client-config", action="append", default=[],
                    help="KEY=VALUE librdkafka property for both clients (security.protocol, sasl.*, ssl.*)")
args = parser.parse_args()
extra = dict(kv.split("=", 1) for kv in args.client_config)

delivered = {}
errors = []


def on_delivery(err, msg):
    if err is not None:
        errors.append(err)
    else:
        delivered[msg.value()] = (msg.partition(), msg.offset())


producer = Producer({
    "bootstrap.servers": args.bootstrap,
    "compression.type": args.compression,
    "enable.idempotence": args.idempotence,
    "acks": args.acks,
    "linger.ms": 5,
    "message.timeout.ms": 30000,
    **extra,
})
for i in range(args.count):
    key = f"key-{i % 37}".encode()
    value = f"{args.compression}-{i:08d}".encode() + b"x" * (i % 200)
    while True:
        try:
            producer.produce(args.topic, value=value, key=key, on_delivery=on_delivery)
            break
        except BufferError:
            producer.poll(0.05)
    producer.poll(0)
remaining = producer.flush(60)
if remaining or errors:
    fail(f"{remaining} undelivered, errors: {errors[:3]}")
if len(delivered) != args.count:
    fail(f"{len(delivered)} of {args.count} delivered")

consumer = Consumer({
    "bootstrap.servers": args.bootstrap,
    "group.id": "roundtrip-unused",
    "enable.auto.commit": False,
    "auto.offset.reset": "earliest",
    **extra,
})
consumer.assign([TopicPartition(args.topic, p, 0) for p in range(args.partitions)])
consumed = []
deadline = time.time() + 60
while len(consumed) < args.count and time.time() < deadline:
    msg = consumer.poll(1.0)
    if msg is None:
        continue
    if msg.error():
        fail(f"consumer error: {msg.error()}")
    consumed.append((msg.partition(), msg.offset(), msg.key(), msg.value()))
# Anything beyond the expected count would be a duplicate; give it a moment to show up.
end = time.time() + 1.0
while time.time() < end:
    msg = consumer.poll(0.2)
    if msg is not None and not msg.error():
        consumed.append((msg.partition(), msg.offset(), msg.key(), msg.value()))
consumer.close()
verify(delivered, consumed)
