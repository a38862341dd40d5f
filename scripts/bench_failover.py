#!/usr/bin/env python3
"""One round of the failover benchmark (driven by scripts/bench_cluster.sh).

The victim is chosen first: with --victim leader, a broker that leads a partition of --topic and
is not the active controller; with --victim controller, the active controller (DescribeCluster),
once it leads a partition. A confluent-kafka producer (acks=all, enable.idempotence=true,
linger.ms=0, librdkafka's defaults otherwise) writes one record every --interval-ms to the
partition the victim leads, open loop: records are enqueued on schedule whether or not earlier ones
are acknowledged, so writes queue up in the client during the outage. Once writes flow, the
victim's process is sent SIGKILL, and the round measures, on one monotonic clock:

  * last_ack_before_ms: the last acknowledgement received before the kill (negative: before it);
  * first_ack_ms:       the first acknowledgement of a record enqueued after the kill — the first
                        write that can only have gone through a new leader (an acknowledgement that
                        the killed leader had already sent can still arrive just after the kill);
  * first_any_ack_ms:   the first acknowledgement of any record after the kill, for comparison;
  * new_leader_ms:      when a surviving broker's metadata first names another leader (polled
                        every 50 ms), which splits failover into election and client discovery;
  * fenced_ms, elected_ms (with --logs): from the broker logs (wall clock), when the active
                        controller fenced the killed broker (its session expired, or a probe found
                        its process gone) and when the new leader took over.

Prints one `failover\t…` line of key=value fields; the killed node id is `killed=N`.
"""
import argparse
import datetime
import os
import signal
import subprocess
import sys
import threading
import time

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient


def leaders_from_describe(binary, bootstrap, topic):
    """{partition: (leader, isr)} from `millrace topic describe`."""
    out = subprocess.run(
        [binary, "topic", "describe", "--bootstrap", bootstrap, topic],
        check=True, capture_output=True, text=True, timeout=10,
    ).stdout
    leaders = {}
    for line in out.splitlines():
        fields = dict(f.split(": ", 1) for f in line.strip().split("\t") if ": " in f)
        if "Partition" in fields:
            leaders[int(fields["Partition"])] = (int(fields["Leader"]), fields.get("Isr", ""))
    if not leaders:
        raise RuntimeError(f"no partitions in:\n{out}")
    return leaders


def choose_victim(binary, bootstrap, topic, admin, mode, timeout=30.0):
    """(victim broker, its partition, isr, active controller), waiting until one fits `mode`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            controller = admin.describe_cluster(request_timeout=5).result().controller.id
            leaders = leaders_from_describe(binary, bootstrap, topic)
        except Exception:  # noqa: BLE001 — retried until the deadline
            controller, leaders = -1, {}
        for partition, (leader, isr) in sorted(leaders.items()):
            if controller >= 0 and (leader == controller) == (mode == "controller"):
                return leader, partition, isr, controller
        if time.monotonic() > deadline:
            sys.exit(f"no partition of {topic} led by a broker fitting --victim {mode} "
                     f"(controller {controller}, leaders {leaders})")
        time.sleep(0.5)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--brokers", required=True, help="NODE=PID=HOST:PORT,… of every broker process")
    ap.add_argument("--topic", required=True)
    ap.add_argument("--interval-ms", type=float, default=5.0)
    ap.add_argument("--warmup", type=float, default=2.0, help="seconds of steady writes before the kill")
    ap.add_argument("--after", type=float, default=1.0, help="seconds to keep writing after recovery")
    ap.add_argument("--timeout", type=float, default=60.0, help="give up this long after the kill")
    ap.add_argument("--logs", default="", help="comma-separated broker log files, for fenced_ms and elected_ms")
    ap.add_argument("--victim", choices=["leader", "controller"], default="leader",
                    help="kill a partition leader that is not the active controller, or the active controller")
    args = ap.parse_args()
    brokers = {}  # node id → (pid, Kafka listener)
    for entry in args.brokers.split(","):
        node, pid, addr = entry.split("=")
        brokers[int(node)] = (int(pid), addr)
    bootstrap = ",".join(addr for _, addr in brokers.values())
    admin = AdminClient({"bootstrap.servers": bootstrap})
    leader, partition, isr, controller = choose_victim(args.bin, bootstrap, args.topic, admin, args.victim)
    if leader not in brokers:
        sys.exit(f"leader {leader} is not one of the started brokers {sorted(brokers)}")

    acks = []  # (enqueue time, ack time) of successful deliveries
    errors = []
    lock = threading.Lock()
    stop = threading.Event()
    settings = {
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 0,
        "delivery.timeout.ms": int((args.timeout + 30) * 1000),
    }
    # e.g. FAILOVER_CLIENT_DEBUG=broker,topic,metadata,msg,eos: librdkafka's own log on stderr
    if os.environ.get("FAILOVER_CLIENT_DEBUG"):
        settings["debug"] = os.environ["FAILOVER_CLIENT_DEBUG"]
    producer = Producer(settings)

    def on_delivery(err, msg, enqueued):
        now = time.monotonic()
        with lock:
            if err is None:
                acks.append((enqueued, now))
            else:
                errors.append((enqueued, now, str(err)))

    def produce_loop():
        interval = args.interval_ms / 1000.0
        start = time.monotonic()
        i = 0
        while not stop.is_set():
            due = start + i * interval
            now = time.monotonic()
            if now < due:
                producer.poll(min(due - now, interval))  # serves delivery reports while waiting
                continue
            enqueued = time.monotonic()
            producer.produce(args.topic, value=b"%d" % i, partition=partition,
                             on_delivery=lambda err, msg, t=enqueued: on_delivery(err, msg, t))
            producer.poll(0)
            i += 1
        producer.flush(10)

    thread = threading.Thread(target=produce_loop, daemon=True)
    thread.start()

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with lock:
            if len(acks) >= 20:
                break
        time.sleep(0.05)
    else:
        sys.exit(f"no writes acknowledged within 30 s (errors: {errors[:3]})")
    time.sleep(args.warmup)

    survivors = [addr for node, (_, addr) in brokers.items() if node != leader]
    admin = AdminClient({"bootstrap.servers": ",".join(survivors)})

    kill_wall = time.time()
    kill_t = time.monotonic()
    os.kill(brokers[leader][0], signal.SIGKILL)

    new_leader, new_leader_t = None, None
    first_ack_t = None
    while time.monotonic() < kill_t + args.timeout:
        if new_leader_t is None:
            try:
                md = admin.list_topics(args.topic, timeout=1)
                p = md.topics[args.topic].partitions.get(partition)
                if p is not None and p.leader not in (-1, leader):
                    new_leader, new_leader_t = p.leader, time.monotonic()
            except Exception:  # noqa: BLE001 — a survivor may be busy; poll again
                pass
        with lock:
            after = [a for e, a in acks if e > kill_t]
        if after and first_ack_t is None:
            first_ack_t = min(after)
        if first_ack_t is not None and new_leader_t is not None and time.monotonic() > first_ack_t + args.after:
            break
        time.sleep(0.05)
    stop.set()
    thread.join(20)

    with lock:
        before = [a for _, a in acks if a <= kill_t]
        any_after = [a for _, a in acks if a > kill_t]
        n_acks, n_errors = len(acks), len(errors)
        first_error = errors[0][2] if errors else "-"

    def ms(t):
        return "-" if t is None else f"{(t - kill_t) * 1000:.0f}"

    def log_ms(*needles):
        """Earliest line after the kill containing a needle, in ms after the kill (wall clock)."""
        best = None
        for path in filter(None, args.logs.split(",")):
            with open(path, errors="replace") as f:
                for line in f:
                    if not any(n in line for n in needles):
                        continue
                    try:
                        ts = datetime.datetime.fromisoformat(line.split(" ", 1)[0].replace("Z", "+00:00")).timestamp()
                    except ValueError:
                        continue
                    if ts > kill_wall and (best is None or ts < best):
                        best = ts
        return "-" if best is None else f"{(best - kill_wall) * 1000:.0f}"

    print("failover\tkilled=%d\tpartition=%d\tcontroller=%d\tisr_before=%s\tlast_ack_before_ms=%s\tfirst_ack_ms=%s"
          "\tfirst_any_ack_ms=%s\tfenced_ms=%s\telected_ms=%s\tnew_leader=%s\tnew_leader_ms=%s\tacks=%d\terrors=%d"
          "\tfirst_error=%s" % (
              leader, partition, controller, isr, ms(max(before) if before else None), ms(first_ack_t),
              ms(min(any_after) if any_after else None), log_ms("broker session expired", "its process is gone"),
              log_ms(f"became leader partition={args.topic}-{partition} "), new_leader if new_leader is not None else "-",
              ms(new_leader_t), n_acks, n_errors, first_error))
    if first_ack_t is None:
        sys.exit(f"no write acknowledged within {args.timeout} s of the kill")


if __name__ == "__main__":
    main()
