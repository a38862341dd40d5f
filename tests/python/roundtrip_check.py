"""Shared checks for the client round-trip scripts: every produced record is consumed exactly
once, on the partition and at the offset the producer was told, in per-partition order."""

import sys


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def verify(delivered, consumed):
    """delivered: {value: (partition, offset)}; consumed: list of (partition, offset, key, value)."""
    seen = {}
    last_offset = {}
    for partition, offset, key, value in consumed:
        if value in seen:
            fail(f"record {value!r} consumed twice: at {seen[value]} and {(partition, offset)}")
        seen[value] = (partition, offset)
        if partition in last_offset and offset <= last_offset[partition]:
            fail(f"partition {partition}: offset {offset} after {last_offset[partition]} (order broken)")
        last_offset[partition] = offset
        if value not in delivered:
            fail(f"consumed {value!r} which was never acknowledged")
        if delivered[value] != (partition, offset):
            fail(f"{value!r} acknowledged at {delivered[value]} but consumed at {(partition, offset)}")
    missing = set(delivered) - set(seen)
    if missing:
        fail(f"{len(missing)} acknowledged records never consumed, e.g. {sorted(missing)[:5]}")
    # Within a key, records must come back in the order they were produced.
    by_key = {}
    for partition, offset, key, value in consumed:
        seq = int(value.split(b"-")[1][:8])
        if key in by_key and seq <= by_key[key]:
            fail(f"key {key!r}: record {seq} consumed after {by_key[key]}")
        by_key[key] = seq
    partitions_used = len({p for p, _ in delivered.values()})
    print(f"OK {len(consumed)} records on {partitions_used} partitions")
