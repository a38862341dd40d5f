"""Jepsen-style checker for a Kafka queue history (pure functions, no client imports).

A history is made of plain dicts:

* acked: writes the broker acknowledged, `{"value", "partition", "offset", "time"}`; the offset
  is None when the client learnt of the success without one (librdkafka does so when the
  broker answers a retried batch as a duplicate): such writes count for loss, not for offsets;
* reads: per consumer name, the records it polled in order, `{"partition", "offset", "value"}`;
* final: what a reader found reading every partition from the beginning to its end after the
  faults, `{"partition", "offset", "value"}`;
* attempted: every value any producer tried to write (acknowledged, failed or never answered).

`check` returns a JSON-ready summary. Anomaly classes (each fails the check):

* lost: an acknowledged value is not in the final read (examples say which consumers saw it);
* lost_read: a value a consumer read (so the broker had committed it: consumers only see data
  below the high watermark) is not in the final read, though it was never acknowledged;
* inconsistent_offsets: one (partition, offset) holds different values across the acknowledged
  writes, the consumers' reads and the final read;
* duplicates: one value at more than one (partition, offset) (the producers are idempotent and
  write every value once);
* nonmonotonic: a consumer's offsets on one partition do not strictly increase (the consumers
  never seek backwards; after a reconnect they continue from their position);
* final_read_incomplete: the final reader did not reach the end of every partition, so loss
  cannot be judged;
* skips: a consumer jumped over offsets that the final log has (it never seeks forward, so the
  broker handed it a later batch than the one asked for);
* offset_resets: a consumer was told its position was out of range (consumers only ever stand on
  committed data, which every in-sync replica has, so no leader may answer that);
* producer_order: one producer's values on one partition are not in the order it wrote them
  (values are `<producer>-<n>`; idempotent producers keep order across retries);
* holes: the final log of a partition skips an offset between two records (no transactions or
  compaction here, so offsets are contiguous);
* group_skips: a group consumer started a partition (after an assignment) beyond every offset
  the group had tried to commit for it, over records the final log has: committed data was
  skipped;
* group_rewinds: a group consumer started a partition below the offset the group's latest
  acknowledged commit (acknowledged before the assignment) stored, and no later commit attempt
  explains it: an unexplained offset reset (a lost commit or a silent reset to the log start).

Group consumers (`check_groups`) are judged per session (one partition from one assignment to
its revocation): each session's reads join `reads` under the name `<consumer>#<session>`, so the
order, skip and consistency checks above apply within it.

Reported without failing: unacked_present (values whose write failed or was never answered but
that are in the log: allowed) and foreign_present (values in the log this history never
attempted, e.g. another producer's).
"""

import re

EXAMPLES = 5

FAILING = (
    "lost",
    "lost_read",
    "inconsistent_offsets",
    "duplicates",
    "nonmonotonic",
    "final_read_incomplete",
    "skips",
    "offset_resets",
    "producer_order",
    "holes",
    "group_skips",
    "group_rewinds",
)

_PRODUCED = re.compile(r"^(.*)-(\d+)$")


def _position(record):
    return (int(record["partition"]), int(record["offset"]))


def _anomaly(examples):
    return {"count": len(examples), "examples": examples[:EXAMPLES]}


def check(acked, reads, final, attempted=None, final_complete=True, resets=(), sessions=(), commits=()):
    """Checks one history; returns {"valid", "anomalies": {class: {count, examples}}, "stats"}.
    `resets` lists the consumers' out-of-range answers, `{"partition", "position", "error"}`;
    `sessions` and `commits` are the group consumers' (see `check_groups`)."""
    acked = list(acked)
    final = list(final)
    reads = {name: list(records) for name, records in reads.items()}
    sessions = list(sessions)
    for session in sessions:
        reads[f"{session['consumer']}#{session['session']}"] = list(session["reads"])
    group = check_groups(sessions, commits, final)

    final_position = {}
    for record in final:
        final_position.setdefault(record["value"], _position(record))
    final_offsets = {}
    for record in final:
        final_offsets.setdefault(int(record["partition"]), set()).add(int(record["offset"]))
    acked_values = {a["value"] for a in acked}
    seen_by = {}
    for name, records in reads.items():
        for record in records:
            seen_by.setdefault(record["value"], set()).add(name)

    lost = [
        {
            "value": a["value"],
            "partition": a["partition"],
            "offset": a["offset"],
            "seen_by_consumers": sorted(seen_by.get(a["value"], ())),
        }
        for a in acked
        if a["value"] not in final_position
    ]
    lost_read = [
        {"value": value, "seen_by_consumers": sorted(names)}
        for value, names in sorted(seen_by.items())
        if value not in final_position and value not in acked_values
    ]

    # (partition, offset) -> value -> sources; value -> positions.
    at = {}
    positions = {}

    def note(record, source):
        at.setdefault(_position(record), {}).setdefault(record["value"], set()).add(source)
        positions.setdefault(record["value"], set()).add(_position(record))

    for a in acked:
        if a["offset"] is not None:
            note(a, "acked")
    for name, records in reads.items():
        for record in records:
            note(record, name)
    for record in final:
        note(record, "final")
    inconsistent = [
        {
            "partition": p,
            "offset": o,
            "values": {value: sorted(sources) for value, sources in sorted(values.items())},
        }
        for (p, o), values in sorted(at.items())
        if len(values) > 1
    ]
    duplicates = [
        {"value": value, "positions": sorted(list(pos) for pos in where)}
        for value, where in sorted(positions.items())
        if len(where) > 1
    ]

    nonmonotonic = []
    skips = []
    for name, records in sorted(reads.items()):
        last = {}
        for index, record in enumerate(records):
            p, o = _position(record)
            if p in last:
                previous = last[p]
                if o <= previous:
                    nonmonotonic.append(
                        {"consumer": name, "partition": p, "previous": previous, "offset": o, "index": index}
                    )
                elif o > previous + 1:
                    missed = [x for x in range(previous + 1, o) if x in final_offsets.get(p, ())]
                    if missed:
                        skips.append(
                            {"consumer": name, "partition": p, "previous": previous, "offset": o, "missed": missed[:10]}
                        )
            last[p] = o

    producer_order = []
    holes = []
    by_partition = {}
    for record in final:
        by_partition.setdefault(int(record["partition"]), []).append(record)
    for p, records in sorted(by_partition.items()):
        records.sort(key=lambda r: int(r["offset"]))
        last_of = {}
        for before, after in zip(records, records[1:]):
            if int(after["offset"]) != int(before["offset"]) + 1:
                holes.append({"partition": p, "after": int(before["offset"]), "next": int(after["offset"])})
        for record in records:
            match = _PRODUCED.match(str(record["value"]))
            if not match:
                continue
            producer, n = match.group(1), int(match.group(2))
            if producer in last_of and n <= last_of[producer][0]:
                producer_order.append(
                    {
                        "partition": p,
                        "producer": producer,
                        "earlier": {"n": last_of[producer][0], "offset": last_of[producer][1]},
                        "later": {"n": n, "offset": int(record["offset"])},
                    }
                )
            last_of[producer] = (n, int(record["offset"]))

    attempted = set(attempted) if attempted is not None else None
    unacked_present = [v for v in final_position if v not in acked_values and (attempted is None or v in attempted)]
    foreign_present = [] if attempted is None else [v for v in final_position if v not in attempted]

    anomalies = {
        "lost": _anomaly(lost),
        "lost_read": _anomaly(lost_read),
        "inconsistent_offsets": _anomaly(inconsistent),
        "duplicates": _anomaly(duplicates),
        "nonmonotonic": _anomaly(nonmonotonic),
        "final_read_incomplete": _anomaly([] if final_complete else [{"final_complete": False}]),
        "skips": _anomaly(skips),
        "offset_resets": _anomaly(list(resets)),
        "producer_order": _anomaly(producer_order),
        "holes": _anomaly(holes),
        "group_skips": _anomaly(group["skips"]),
        "group_rewinds": _anomaly(group["rewinds"]),
    }
    stats = {
        "acked": len(acked),
        "acked_without_offset": sum(1 for a in acked if a["offset"] is None),
        "attempted": None if attempted is None else len(attempted),
        "read": sum(len(records) for records in reads.values()),
        "read_distinct": len(seen_by),
        "final": len(final),
        "unacked_present": len(unacked_present),
        "unacked_present_examples": sorted(unacked_present)[:EXAMPLES],
        "foreign_present": len(foreign_present),
        "foreign_present_examples": sorted(foreign_present)[:EXAMPLES],
    }
    stats["group"] = group["stats"]
    valid = all(anomalies[name]["count"] == 0 for name in FAILING)
    return {"valid": valid, "anomalies": anomalies, "stats": stats}


def check_groups(sessions, commits, final):
    """Judges where group consumers started each partition they were assigned.

    sessions: `{"consumer", "session", "partition", "assigned_time", "reads": [{"offset", "time",
    ...}]}`, one per partition per assignment; commits: the group's commit attempts per partition,
    `{"partition", "offset", "start", "end", "ok"}` (offset = the next offset to read; end None
    when never answered). Times are one clock (the workload's).

    A session's first offset must lie between the floor (the offset of the latest commit that
    was acknowledged before the assignment: the coordinator stored it before the new owner asked)
    and the ceiling (the highest offset any commit attempted before the first read tried to
    store, or 0: a commit that failed at the client may still have been stored). Below the floor
    is a rewind unless a commit attempted after the floor's (one that may have overwritten it)
    stored exactly that offset; above the ceiling is a skip when the final log has any of the
    offsets passed over. Returns {"skips", "rewinds", "stats"}."""
    final_offsets = {}
    for record in final:
        final_offsets.setdefault(int(record["partition"]), set()).add(int(record["offset"]))
    by_partition = {}
    for commit in commits:
        by_partition.setdefault(int(commit["partition"]), []).append(commit)
    skips = []
    rewinds = []
    started = 0
    for session in sessions:
        if not session["reads"]:
            continue
        started += 1
        p = int(session["partition"])
        first = session["reads"][0]
        start = int(first["offset"])
        partition_commits = by_partition.get(p, [])
        acked = [c for c in partition_commits if c["ok"] and c["end"] is not None and c["end"] < session["assigned_time"]]
        latest = max(acked, key=lambda c: c["end"], default=None)
        floor = int(latest["offset"]) if latest else 0
        tried = [int(c["offset"]) for c in partition_commits if c["start"] < first["time"]]
        ceiling = max(tried, default=0)
        where = {
            "consumer": session["consumer"],
            "session": session["session"],
            "partition": p,
            "start": start,
            "floor": floor,
            "ceiling": ceiling,
        }
        if start > ceiling:
            missed = sorted(o for o in final_offsets.get(p, ()) if ceiling <= o < start)
            if missed:
                skips.append({**where, "missed": missed[:10], "missed_count": len(missed)})
        elif start < floor:
            overwritten = any(
                int(c["offset"]) == start and c["start"] > latest["start"] and c["start"] < first["time"]
                for c in partition_commits
            )
            if not overwritten:
                rewinds.append(where)
    stats = {
        "sessions": len(sessions),
        "sessions_read": started,
        "commits": len(commits),
        "commits_ok": sum(1 for c in commits if c["ok"]),
        "reads": sum(len(s["reads"]) for s in sessions),
    }
    return {"skips": skips, "rewinds": rewinds, "stats": stats}


def gaps(times, start, end, threshold=1.0):
    """Gaps between consecutive acknowledgement times in [start, end] (the window's edges count
    as events, so a stall at the beginning or end shows). Returns the longest gap and every gap
    longer than `threshold`, as seconds relative to `start`."""
    points = [start] + sorted(t for t in times if start <= t <= end) + [end]
    longest = 0.0
    over = []
    for before, after in zip(points, points[1:]):
        gap = after - before
        longest = max(longest, gap)
        if gap > threshold:
            over.append({"from": round(before - start, 3), "to": round(after - start, 3), "seconds": round(gap, 3)})
    return round(longest, 3), over


def per_second(times, start, end):
    """Acknowledgements per whole second since `start`, up to `end`."""
    counts = [0] * (int(max(end - start, 0)) + 1)
    for t in times:
        if start <= t <= end:
            counts[int(t - start)] += 1
    return counts


def availability(acked, start, end, threshold=1.0):
    """Ack-gap statistics overall and per partition, for acknowledgements between `start` (e.g.
    the first acknowledgement) and `end` (when producing stopped)."""
    times = [a["time"] for a in acked]
    longest, over = gaps(times, start, end, threshold)
    by_partition = {}
    for a in acked:
        by_partition.setdefault(int(a["partition"]), []).append(a["time"])
    longest_per_partition = {}
    over_per_partition = {}
    for p, ts in sorted(by_partition.items()):
        longest_per_partition[str(p)], over_per_partition[str(p)] = gaps(ts, start, end, threshold)
    return {
        "window_s": round(max(end - start, 0), 3),
        "longest_s": longest,
        "over_threshold": over,
        "threshold_s": threshold,
        "longest_per_partition_s": longest_per_partition,
        "over_threshold_per_partition": over_per_partition,
        "acks_per_second": per_second(times, start, end),
    }


def truncation(acked, final, after):
    """For writes an isolated leader acknowledged with acks=1: every one acknowledged after
    `after` (the moment of isolation plus a margin) must be gone from the final log, since no
    replica could have copied it; and no acknowledged value may appear at another offset.
    Returns {"valid", "cut_off_acked", "truncated", "survived", "moved", "lost_before"}."""
    final_position = {}
    for record in final:
        final_position.setdefault(record["value"], _position(record))
    cut_off = [a for a in acked if a["time"] > after]
    survived = [
        {"value": a["value"], "partition": a["partition"], "offset": a["offset"], "time": a["time"]}
        for a in cut_off
        if a["value"] in final_position
    ]
    moved = [
        {"value": a["value"], "acked_at": list(_position(a)), "found_at": list(final_position[a["value"]])}
        for a in acked
        if a["offset"] is not None and a["value"] in final_position and final_position[a["value"]] != _position(a)
    ]
    # acks=1 writes acknowledged before the isolation may still have been unreplicated: allowed.
    lost_before = [a["value"] for a in acked if a["time"] <= after and a["value"] not in final_position]
    return {
        "valid": not survived and not moved,
        "cut_off_acked": len(cut_off),
        "truncated": len(cut_off) - len(survived),
        "truncated_examples": [a["value"] for a in cut_off if a["value"] not in final_position][:EXAMPLES],
        "survived": _anomaly(survived),
        "moved": _anomaly(moved),
        "lost_before": len(lost_before),
    }
