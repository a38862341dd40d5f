"""Jepsen-style queue workload against a Kafka-compatible cluster (confluent-kafka).

    jepsen_workload.py run --bootstrap B --topic T --partitions P --out DIR
                           [--duration S] [--stop-file F] [--producers N] [--consumers N]
                           [--acks all|1] [--rate R] [--value-prefix X] [--no-final]
                           [--group-consumers N --group-id G] ...
    jepsen_workload.py truncation --history H --final F --after UNIX_TIME

`run`: producers write unique values ("<prefix><producer>-<n>") round-robin over the partitions
until --duration passes or the stop file appears, recording every acknowledged write (partition,
offset, value, time) and every failed one; consumers (manual assignment of every partition from
the beginning) poll throughout and record every record they read, in order. DIR/progress.json
is rewritten every 200 ms ({"phase", "elapsed", "acked", "failed", "reads",
"acked_per_partition"}), so a test can inject faults once writes flow and see them resume.
When producing stops the producers flush, the consumers get a short grace period, and the
history goes to DIR/history.json. Then (unless --no-final) a final reader reads every partition
from the beginning to its end offset into DIR/final.json and jepsen_checker judges the history;
the summary (anomaly counts and examples, ack-gap statistics) goes to DIR/summary.json and stdout.
Group consumers (--group-consumers) subscribe as one group (--group-id), start each assigned
partition at the group's committed offset (the log start when there is none), commit what they
read every --commit-interval seconds and on revocation, and record every assignment (session),
read and commit attempt; the checker judges where each session started (jepsen_checker.check_groups).
Exit status: 0 valid, 1 anomalies, 2 the workload itself failed.

`truncation`: checks that writes an isolated leader acknowledged with acks=1 after --after are
not in the final log (see jepsen_checker.truncation); prints JSON, exits 1 on a violation.
"""

import argparse
import json
import os
import sys
import threading
import time
import traceback

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

import jepsen_checker
from jepsen_clients import ConsumerWorker, Errors, GroupConsumerWorker, ProducerWorker, decode


def write_json(path, obj, indent=None):
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=indent)
    os.replace(tmp, path)


def final_read(args, partitions):
    """Reads every partition from the beginning to its end offset, then checks the end offsets
    once more and continues until they hold still. Returns (records, complete, ends, errors)."""
    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        "client.id": "jepsen-final",
        "group.id": f"jepsen-final-{os.getpid()}",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "earliest",
        "reconnect.backoff.ms": 50,
        "reconnect.backoff.max.ms": 500,
    })
    deadline = time.time() + args.final_timeout
    errors = Errors()

    def end_offsets():
        ends = {}
        for p in partitions:
            while True:
                try:
                    ends[p] = consumer.get_watermark_offsets(TopicPartition(args.topic, p), timeout=5, cached=False)[1]
                    break
                except KafkaException as e:
                    errors.add(partition=p, error=f"watermarks: {e}")
                    if time.time() > deadline:
                        raise
                    time.sleep(0.5)
        return ends

    ends = end_offsets()
    consumer.assign([TopicPartition(args.topic, p, OFFSET_BEGINNING) for p in partitions])
    records = []
    position = {p: 0 for p in partitions}
    complete = False
    while time.time() < deadline:
        if all(position[p] >= ends[p] for p in partitions):
            newer = end_offsets()
            if newer == ends:
                complete = True
                break
            ends = newer
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            if msg.error().code() == KafkaError._PARTITION_EOF:
                position[msg.partition()] = max(position[msg.partition()], msg.offset())
            else:
                errors.add(partition=msg.partition(), error=str(msg.error()))
            continue
        records.append({"partition": msg.partition(), "offset": msg.offset(), "value": decode(msg.value())})
        position[msg.partition()] = msg.offset() + 1
    consumer.close()
    return records, complete, {str(p): e for p, e in ends.items()}, errors


def progress_json(start, phase, producers, consumers, groups=()):
    acked_per_partition = {}
    for w in producers:
        for p, n in dict(w.acked_per_partition).items():
            acked_per_partition[str(p)] = acked_per_partition.get(str(p), 0) + n
    return {
        "time": time.time(),
        "elapsed": round(time.time() - start, 3),
        "phase": phase,
        "acked": sum(len(w.acked) for w in producers),
        "failed": sum(len(w.failed) for w in producers),
        "attempted": sum(len(w.attempted) for w in producers),
        "reads": sum(len(w.reads) for w in consumers),
        "group_reads": sum(len(s["reads"]) for w in groups for s in list(w.sessions)),
        "group_commits": sum(len(w.commits) for w in groups),
        "acked_per_partition": acked_per_partition,
    }


def cmd_run(args):
    os.makedirs(args.out, exist_ok=True)
    partitions = list(range(args.partitions))
    start = time.time()
    produce_stop = threading.Event()
    consume_stop = threading.Event()
    producers = [ProducerWorker(i, args, partitions, produce_stop) for i in range(args.producers)]
    consumers = [ConsumerWorker(i, args, partitions, consume_stop) for i in range(args.consumers)]
    groups = [GroupConsumerWorker(i, args, consume_stop) for i in range(args.group_consumers)]
    for worker in producers + consumers + groups:
        worker.start()
    progress_path = os.path.join(args.out, "progress.json")

    def progress(phase):
        write_json(progress_path, progress_json(start, phase, producers, consumers, groups))

    while time.time() < start + args.duration and not (args.stop_file and os.path.exists(args.stop_file)):
        if any(w.crash for w in producers + consumers + groups):
            break
        progress("producing")
        time.sleep(0.2)
    produce_stop.set()
    stopped = time.time()
    progress("flushing")
    for worker in producers:
        worker.join(args.flush_timeout + 30)
        progress("flushing")
    time.sleep(args.consumer_grace)
    consume_stop.set()
    for worker in consumers + groups:
        worker.join(30)

    acked = [a for w in producers for a in w.acked]
    failed = [f for w in producers for f in w.failed]
    indeterminate = [v for w in producers for v in w.pending]
    attempted = [v for w in producers for v in w.attempted]
    reads = {f"consumer-{w.index}": w.reads for w in consumers}
    sessions = [s for w in groups for s in w.sessions]
    commits = [c for w in groups for c in w.commits]
    history = {
        "topic": args.topic,
        "partitions": partitions,
        "acks": args.acks,
        "start_time": start,
        "producing_stopped_time": stopped,
        "acked": acked,
        "failed": failed,
        "indeterminate": indeterminate,
        "attempted": attempted,
        "reads": reads,
        "group_sessions": sessions,
        "group_commits": commits,
    }
    write_json(os.path.join(args.out, "history.json"), history)

    first_ack = min((a["time"] for a in acked), default=stopped)
    problems = []
    for w in producers + consumers + groups:
        if w.crash:
            problems.append(f"{w.name} crashed: {w.crash}")
        if w.is_alive():
            problems.append(f"{w.name} did not finish")
    if not acked:
        problems.append("no write was acknowledged")
    summary = {
        "topic": args.topic,
        "acks": args.acks,
        "start_time": start,
        "first_ack_time": first_ack,
        "producing_stopped_time": stopped,
        "acked": len(acked),
        "failed": len(failed),
        "failed_examples": failed[:jepsen_checker.EXAMPLES],
        "indeterminate": len(indeterminate),
        "attempted": len(attempted),
        "producer_fatal_errors": [f for w in producers for f in w.fatal],
        "producer_client_errors": [w.client_errors.to_json() for w in producers],
        "consumer_client_errors": [w.client_errors.to_json() for w in consumers],
        "consumer_offset_resets": [w.offset_resets.to_json() for w in consumers],
        "group_client_errors": [w.client_errors.to_json() for w in groups],
        "gaps": jepsen_checker.availability(acked, first_ack, stopped),
        "problems": problems,
    }
    if not args.no_final:
        progress("final")
        try:
            records, complete, ends, final_errors = final_read(args, partitions)
            final_errors = final_errors.to_json()
        except Exception:  # noqa: BLE001 - the history is still worth judging
            records, complete, ends = [], False, {}
            final_errors = {"count": 1, "examples": [traceback.format_exc()]}
            problems.append("the final read failed")
        write_json(os.path.join(args.out, "final.json"), records)
        resets = [reset for w in consumers for reset in w.offset_resets.all]
        verdict = jepsen_checker.check(
            acked,
            reads,
            records,
            attempted=attempted,
            final_complete=complete,
            resets=resets,
            sessions=sessions,
            commits=commits,
        )
        summary.update({"final_end_offsets": ends, "final_errors": final_errors, **verdict})
    progress("done")
    write_json(os.path.join(args.out, "summary.json"), summary, indent=1)
    print(json.dumps(summary, indent=1))
    if problems:
        return 2
    return 0 if summary.get("valid", True) else 1


def cmd_truncation(args):
    with open(args.history) as f:
        history = json.load(f)
    with open(args.final) as f:
        final = json.load(f)
    report = jepsen_checker.truncation(history["acked"], final, args.after)
    print(json.dumps(report, indent=1))
    return 0 if report["valid"] else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run")
    run.add_argument("--bootstrap", required=True)
    run.add_argument("--topic", required=True)
    run.add_argument("--partitions", type=int, required=True, help="partitions 0..P-1 are written and read")
    run.add_argument("--out", required=True, help="directory for progress, history, final read and summary")
    run.add_argument("--duration", type=float, default=60, help="longest time to produce, seconds")
    run.add_argument("--stop-file", help="stop producing as soon as this file exists")
    run.add_argument("--producers", type=int, default=2)
    run.add_argument("--consumers", type=int, default=2)
    run.add_argument("--group-consumers", type=int, default=0, help="members of one consumer group")
    run.add_argument("--group-id", default="jepsen-group")
    run.add_argument("--commit-interval", type=float, default=0.5, help="seconds between group commits")
    run.add_argument("--acks", choices=["all", "1"], default="all")
    run.add_argument("--retries", type=int, help="default: librdkafka's with acks=all, 0 with acks=1")
    run.add_argument("--rate", type=float, default=200, help="writes per second per producer")
    run.add_argument("--value-prefix", default="p")
    run.add_argument("--max-pending-per-partition", type=int, default=500)
    run.add_argument("--message-timeout-ms", type=int, default=60000)
    run.add_argument("--request-timeout-ms", type=int, default=10000)
    run.add_argument("--flush-timeout", type=float, default=90)
    run.add_argument("--consumer-grace", type=float, default=2)
    run.add_argument("--final-timeout", type=float, default=90)
    run.add_argument("--no-final", action="store_true", help="skip the final read and check")
    trunc = sub.add_parser("truncation")
    trunc.add_argument("--history", required=True)
    trunc.add_argument("--final", required=True)
    trunc.add_argument("--after", type=float, required=True, help="unix time: isolation plus a margin")
    args = parser.parse_args()
    try:
        return cmd_run(args) if args.command == "run" else cmd_truncation(args)
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        return 2


if __name__ == "__main__":
    sys.exit(main())
