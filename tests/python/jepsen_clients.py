"""The clients of the Jepsen-style workload (jepsen_workload.py): idempotent producers that record
every acknowledged and failed write, consumers by manual assignment that record every read, and
group consumers that record their sessions, reads and commits (confluent-kafka)."""

import os
import threading
import time
import traceback

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition

ERROR_EXAMPLES = 20


def decode(value):
    return "<null>" if value is None else value.decode("utf-8", errors="replace")


class Errors:
    """Counts errors and keeps the first few."""

    def __init__(self, keep_all=False):
        self.count = 0
        self.examples = []
        # Every one, for errors the checker judges (offset resets).
        self.all = [] if keep_all else None

    def add(self, **fields):
        self.count += 1
        entry = {"time": time.time(), **fields}
        if len(self.examples) < ERROR_EXAMPLES:
            self.examples.append(entry)
        if self.all is not None:
            self.all.append(entry)

    def to_json(self):
        return {"count": self.count, "examples": self.examples}


class ProducerWorker(threading.Thread):
    def __init__(self, index, args, partitions, stop):
        super().__init__(name=f"producer-{index}", daemon=True)
        self.index = index
        self.args = args
        self.partitions = partitions
        self.stop = stop
        self.acked = []
        self.failed = []
        self.pending = {}  # value -> partition, no delivery report yet
        self.pending_per_partition = {p: 0 for p in partitions}
        self.acked_per_partition = {p: 0 for p in partitions}
        self.attempted = []
        self.client_errors = Errors()
        self.fatal = []
        self.crash = None
        self.stopped_at = None
        self.undelivered_after_flush = 0

    def config(self):
        args = self.args
        conf = {
            "bootstrap.servers": args.bootstrap,
            "client.id": f"jepsen-{args.value_prefix}{self.index}",
            "acks": args.acks,
            "linger.ms": 5,
            "message.timeout.ms": args.message_timeout_ms,
            "request.timeout.ms": args.request_timeout_ms,
            "socket.timeout.ms": args.request_timeout_ms,
            "reconnect.backoff.ms": 50,
            "reconnect.backoff.max.ms": 500,
            "retry.backoff.ms": 100,
            "retry.backoff.max.ms": 1000,
            "topic.metadata.refresh.interval.ms": 2000,
            "error_cb": self.on_error,
        }
        # librdkafka debug contexts (e.g. "eos,protocol") to the workload's stderr, to see why
        # the idempotent producer did what it did.
        if os.environ.get("MILLRACE_JEPSEN_PRODUCER_DEBUG"):
            conf["debug"] = os.environ["MILLRACE_JEPSEN_PRODUCER_DEBUG"]
        if args.acks == "all":
            conf["enable.idempotence"] = True
        else:
            # Idempotence needs acks=all; without it a retry may duplicate, so none by default.
            conf["enable.idempotence"] = False
            conf["retries"] = args.retries if args.retries is not None else 0
        if args.retries is not None and args.acks == "all":
            conf["retries"] = args.retries
        return conf

    def on_error(self, err):
        if err.fatal():
            self.fatal.append({"time": time.time(), "error": str(err)})
        else:
            self.client_errors.add(error=str(err))

    def on_delivery(self, err, msg):
        value = decode(msg.value())
        partition = self.pending.pop(value, msg.partition())
        self.pending_per_partition[partition] -= 1
        now = time.time()
        if err is not None:
            self.failed.append({"value": value, "partition": partition, "error": str(err), "time": now})
        else:
            self.acked.append({"value": value, "partition": msg.partition(), "offset": msg.offset(), "time": now})
            self.acked_per_partition[msg.partition()] += 1

    def next_partition(self, n):
        """Round-robin, skipping partitions with a full backlog (a stalled partition must not
        stop writes to the others)."""
        for k in range(len(self.partitions)):
            p = self.partitions[(n + k) % len(self.partitions)]
            if self.pending_per_partition[p] < self.args.max_pending_per_partition:
                return p
        return None

    def run(self):
        try:
            self.produce_loop()
        except Exception:  # noqa: BLE001 - reported in the summary
            self.crash = traceback.format_exc()

    def produce_loop(self):
        producer = Producer(self.config())
        interval = 1.0 / self.args.rate
        next_at = time.time()
        n = 0
        while not self.stop.is_set() and not self.fatal:
            now = time.time()
            if now < next_at:
                producer.poll(min(next_at - now, 0.05))
                continue
            partition = self.next_partition(n)
            if partition is None:
                producer.poll(0.05)
                continue
            value = f"{self.args.value_prefix}{self.index}-{n}"
            try:
                producer.produce(self.args.topic, value=value.encode(), partition=partition, on_delivery=self.on_delivery)
            except BufferError:
                producer.poll(0.05)
                continue
            except KafkaException as e:
                self.fatal.append({"time": time.time(), "error": f"produce: {e}"})
                break
            self.pending[value] = partition
            self.pending_per_partition[partition] += 1
            self.attempted.append(value)
            n += 1
            # Keep the rate, but never burst to catch up after a stall.
            next_at = max(next_at + interval, now - 1.0)
            producer.poll(0)
        self.stopped_at = time.time()
        self.undelivered_after_flush = producer.flush(self.args.flush_timeout)


def polling_consumer_conf(args, client_errors):
    """Settings the concurrent consumers share: short fetch waits and quick reconnects."""
    return {
        "fetch.wait.max.ms": 100,
        # A fetch stuck on a cut-off broker is abandoned after this, so the consumer finds the
        # new leader instead of waiting out librdkafka's 60 s default.
        "socket.timeout.ms": args.request_timeout_ms,
        "topic.metadata.refresh.interval.ms": 2000,
        "reconnect.backoff.ms": 50,
        "reconnect.backoff.max.ms": 500,
        "error_cb": lambda err: client_errors.add(error=str(err)),
    }


class ConsumerWorker(threading.Thread):
    def __init__(self, index, args, partitions, stop):
        super().__init__(name=f"consumer-{index}", daemon=True)
        self.index = index
        self.args = args
        self.partitions = partitions
        self.stop = stop
        self.reads = []
        self.client_errors = Errors()
        self.offset_resets = Errors(keep_all=True)
        self.crash = None

    def run(self):
        try:
            self.consume_loop()
        except Exception:  # noqa: BLE001 - reported in the summary
            self.crash = traceback.format_exc()

    def consume_loop(self):
        args = self.args
        consumer = Consumer({
            "bootstrap.servers": args.bootstrap,
            "client.id": f"jepsen-c{self.index}",
            "group.id": f"jepsen-unused-{os.getpid()}-{self.index}",
            "enable.auto.commit": False,
            # Never jump silently: an out-of-range position is reported, then resumed from the
            # consumer's own position (so its reads stay monotonic).
            "auto.offset.reset": "error",
            **polling_consumer_conf(args, self.client_errors),
        })
        consumer.assign([TopicPartition(args.topic, p, OFFSET_BEGINNING) for p in self.partitions])
        last = {}
        while not self.stop.is_set():
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            if msg.error():
                code = msg.error().code()
                if code == KafkaError._AUTO_OFFSET_RESET:
                    p = msg.partition()
                    self.offset_resets.add(partition=p, error=str(msg.error()), position=last.get(p))
                    time.sleep(0.5)
                    resume = last[p] + 1 if p in last else OFFSET_BEGINNING
                    try:
                        consumer.seek(TopicPartition(args.topic, p, resume))
                    except KafkaException as e:
                        self.client_errors.add(error=f"seek {p}@{resume}: {e}")
                else:
                    self.client_errors.add(partition=msg.partition(), error=str(msg.error()))
                continue
            self.reads.append(
                {"partition": msg.partition(), "offset": msg.offset(), "value": decode(msg.value()), "time": time.time()}
            )
            last[msg.partition()] = msg.offset()
        consumer.close()


class GroupConsumerWorker(threading.Thread):
    """One member of the consumer group: a session per assigned partition, a commit of what it
    read every --commit-interval seconds and when a partition is revoked."""

    def __init__(self, index, args, stop):
        super().__init__(name=f"group-consumer-{index}", daemon=True)
        self.index = index
        self.args = args
        self.stop = stop
        self.sessions = []
        self.commits = []
        self.current = {}  # partition -> open session
        self.uncommitted = {}  # partition -> next offset to read, not yet committed
        self.client_errors = Errors()
        self.crash = None

    @property
    def reads(self):
        return [r for s in self.sessions for r in s["reads"]]

    def run(self):
        try:
            self.consume_loop()
        except Exception:  # noqa: BLE001 - reported in the summary
            self.crash = traceback.format_exc()

    def on_assign(self, consumer, partitions):
        now = time.time()
        for tp in partitions:
            session = {
                "consumer": f"group-{self.index}",
                "session": len(self.sessions),
                "partition": tp.partition,
                "assigned_time": now,
                "revoked_time": None,
                "reads": [],
            }
            self.sessions.append(session)
            self.current[tp.partition] = session

    def on_revoke(self, consumer, partitions):
        # Commit what was read before giving the partitions up (the next owner starts there).
        self.commit(consumer, [tp.partition for tp in partitions])
        self.close_sessions(partitions)

    def on_lost(self, consumer, partitions):
        self.close_sessions(partitions)

    def close_sessions(self, partitions):
        now = time.time()
        for tp in partitions:
            session = self.current.pop(tp.partition, None)
            if session is not None:
                session["revoked_time"] = now
            self.uncommitted.pop(tp.partition, None)

    def commit(self, consumer, partitions=None):
        offsets = {p: o for p, o in self.uncommitted.items() if partitions is None or p in partitions}
        if not offsets:
            return
        tps = [TopicPartition(self.args.topic, p, o) for p, o in sorted(offsets.items())]
        start = time.time()
        entries = [{"partition": p, "offset": o, "start": start, "end": None, "ok": False} for p, o in sorted(offsets.items())]
        self.commits.extend(entries)
        try:
            result = consumer.commit(offsets=tps, asynchronous=False)
        except KafkaException as e:
            end = time.time()
            for entry in entries:
                entry.update(end=end, error=str(e))
            return
        end = time.time()
        errors = {tp.partition: tp.error for tp in (result or []) if tp.error is not None}
        for entry in entries:
            error = errors.get(entry["partition"])
            entry.update(end=end, ok=error is None, error=None if error is None else str(error))
            if error is None and self.uncommitted.get(entry["partition"]) == entry["offset"]:
                del self.uncommitted[entry["partition"]]

    def consume_loop(self):
        args = self.args
        consumer = Consumer({
            "bootstrap.servers": args.bootstrap,
            "client.id": f"jepsen-g{self.index}",
            "group.id": args.group_id,
            "enable.auto.commit": False,
            # No committed offset: the log start. A committed offset out of range would also land
            # there, which the checker sees as a rewind below the group's commits.
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 10000,
            "heartbeat.interval.ms": 1000,
            **polling_consumer_conf(args, self.client_errors),
        })
        consumer.subscribe([args.topic], on_assign=self.on_assign, on_revoke=self.on_revoke, on_lost=self.on_lost)
        next_commit = time.time() + args.commit_interval
        while not self.stop.is_set():
            msg = consumer.poll(0.2)
            if time.time() >= next_commit:
                self.commit(consumer)
                next_commit = time.time() + args.commit_interval
            if msg is None:
                continue
            if msg.error():
                self.client_errors.add(partition=msg.partition(), error=str(msg.error()))
                continue
            session = self.current.get(msg.partition())
            if session is None:
                self.client_errors.add(partition=msg.partition(), error=f"read offset {msg.offset()} while unassigned")
                continue
            session["reads"].append(
                {"partition": msg.partition(), "offset": msg.offset(), "value": decode(msg.value()), "time": time.time()}
            )
            self.uncommitted[msg.partition()] = msg.offset() + 1
        self.commit(consumer)
        consumer.close()
