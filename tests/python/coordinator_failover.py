"""Group offsets across a coordinator failover (confluent-kafka).

    coordinator_failover.py produce     --bootstrap B --topic T --count N
    coordinator_failover.py consume     --bootstrap B --topic T --group G --count N
    coordinator_failover.py coordinator --bootstrap B --group G
    coordinator_failover.py committed   --bootstrap B --topic T --group G --partitions P

`produce` writes values "v-0".."v-{N-1}" (acks=all, idempotent) and prints how many were acked.
`consume` joins group G, reads exactly N records, committing synchronously after each one, closes
(leaving the group) and prints the values read as JSON. `coordinator` prints the broker id
coordinating G. `committed` prints the group's committed offsets per partition as JSON.
Every command exits non-zero with a message on failure."""

import argparse
import concurrent.futures
import json
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

parser = argparse.ArgumentParser()
parser.add_argument("command", choices=["produce", "consume", "coordinator", "committed"])
parser.add_argument("--bootstrap", required=True)
parser.add_argument("--topic")
parser.add_argument("--group")
parser.add_argument("--count", type=int, default=0)
parser.add_argument("--partitions", type=int, default=1)
parser.add_argument("--timeout", type=float, default=60.0)
args = parser.parse_args()


def produce():
    producer = Producer({"bootstrap.servers": args.bootstrap, "enable.idempotence": True, "acks": "all"})
    acked = []

    def report(err, msg):
        if err is None:
            acked.append(msg.value())

    for i in range(args.count):
        producer.produce(args.topic, value=f"v-{i}".encode(), on_delivery=report)
        producer.poll(0)
    left = producer.flush(args.timeout)
    if left or len(acked) != args.count:
        sys.exit(f"only {len(acked)} of {args.count} records acknowledged ({left} undelivered)")
    print(len(acked))


def consume():
    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 6000,
        # A coordinator that died mid-request must not stall the consumer for a minute.
        "socket.timeout.ms": 10000,
    })
    consumer.subscribe([args.topic])
    values = []
    deadline = time.time() + args.timeout
    while len(values) < args.count:
        if time.time() > deadline:
            sys.exit(f"read only {len(values)} of {args.count} records: {values[-5:]}")
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            print(f"consumer error: {msg.error()}", file=sys.stderr)
            continue
        values.append(msg.value().decode())
        # Retry the commit through a coordinator change: the test is about not losing it.
        while True:
            try:
                consumer.commit(message=msg, asynchronous=False)
                break
            except KafkaException as e:
                if time.time() > deadline:
                    sys.exit(f"commit kept failing: {e}")
                print(f"commit retry: {e}", file=sys.stderr)
                time.sleep(0.2)
    consumer.close()
    print(json.dumps(values))


def coordinator():
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    deadline = time.time() + args.timeout
    while True:
        try:
            description = admin.describe_consumer_groups([args.group])[args.group].result(timeout=10)
            print(description.coordinator.id)
            return
        # While the old coordinator's session runs out, lookups time out or fail: ask again.
        except (KafkaException, TimeoutError, concurrent.futures.TimeoutError) as e:
            if time.time() > deadline:
                sys.exit(f"no coordinator for {args.group}: {e}")
            time.sleep(0.5)


def committed():
    consumer = Consumer({"bootstrap.servers": args.bootstrap, "group.id": args.group})
    wanted = [TopicPartition(args.topic, p) for p in range(args.partitions)]
    offsets = consumer.committed(wanted, timeout=args.timeout)
    consumer.close()
    print(json.dumps({str(tp.partition): tp.offset for tp in offsets}))


{"produce": produce, "consume": consume, "coordinator": coordinator, "committed": committed}[args.command]()
