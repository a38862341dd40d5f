"""A consumer-group member (confluent-kafka) for the group tests. It appends every record it
processes to --out as `REC partition offset value` BEFORE committing (at-least-once), and every
change of its owned partitions as `OWNED unix_ms p,p,...`. SIGTERM closes the consumer (a graceful
LeaveGroup); SIGKILL simulates a crash."""

import argparse
import signal
import time

from confluent_kafka import Consumer, KafkaException

parser = argparse.ArgumentParser()
parser.add_argument("--bootstrap", required=True)
parser.add_argument("--group", required=True)
parser.add_argument("--topic", required=True)
parser.add_argument("--out", required=True)
parser.add_argument("--strategy", default="range")
parser.add_argument("--session-timeout-ms", type=int, default=6000)
parser.add_argument("--instance-id", default=None)
args = parser.parse_args()

out = open(args.out, "a", buffering=1)
owned = set()
stopping = False


def write_owned():
    out.write(f"OWNED {int(time.time() * 1000)} {','.join(str(p) for p in sorted(owned))}\n")


def on_assign(consumer, partitions):
    owned.update(p.partition for p in partitions)
    if args.strategy == "cooperative-sticky":
        consumer.incremental_assign(partitions)
    else:
        consumer.assign(partitions)
    write_owned()


def on_revoke(consumer, partitions):
    # Commit what was processed before giving partitions away.
    try:
        consumer.commit(asynchronous=False)
    except KafkaException:
        pass
    owned.difference_update(p.partition for p in partitions)
    if args.strategy == "cooperative-sticky":
        consumer.incremental_unassign(partitions)
    else:
        consumer.unassign()
    write_owned()


def on_lost(consumer, partitions):
    owned.difference_update(p.partition for p in partitions)
    write_owned()


def stop(*_):
    global stopping
    stopping = True


signal.signal(signal.SIGTERM, stop)
config = {
    "bootstrap.servers": args.bootstrap,
    "group.id": args.group,
    "enable.auto.commit": False,
    "auto.offset.reset": "earliest",
    "session.timeout.ms": args.session_timeout_ms,
    "heartbeat.interval.ms": 500,
    "partition.assignment.strategy": args.strategy,
}
if args.instance_id:
    config["group.instance.id"] = args.instance_id
consumer = Consumer(config)
consumer.subscribe([args.topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)
out.write(f"STARTED {int(time.time() * 1000)}\n")
while not stopping:
    messages = consumer.consume(num_messages=200, timeout=0.2)
    processed = False
    for msg in messages:
        if msg.error():
            continue
        out.write(f"REC {msg.partition()} {msg.offset()} {msg.value().decode()}\n")
        processed = True
    if processed:
        try:
            consumer.commit(asynchronous=False)
        except KafkaException as e:
            # A commit refused during a rebalance is retried with the next batch; the records
            # are delivered again to the next owner (at-least-once).
            out.write(f"COMMIT-FAILED {e}\n")
consumer.close()
out.write(f"CLOSED {int(time.time() * 1000)}\n")
out.close()
