"""Unit tests of jepsen_checker on synthetic histories:

    python3 -m unittest discover -s tests/python -p 'test_jepsen_checker.py'
    python3 tests/python/test_jepsen_checker.py
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jepsen_checker as checker  # noqa: E402


def rec(partition, offset, value, time=None):
    record = {"partition": partition, "offset": offset, "value": value}
    if time is not None:
        record["time"] = time
    return record


def clean_history():
    """Two partitions, five acknowledged writes, one failed write that still landed, two
    consumers that each read part of the log in order."""
    acked = [
        rec(0, 0, "p0-0", 1.0),
        rec(1, 0, "p0-1", 1.1),
        rec(0, 1, "p0-2", 1.2),
        rec(1, 1, "p1-0", 1.3),
        rec(0, 2, "p1-1", 1.4),
    ]
    final = [rec(0, 0, "p0-0"), rec(0, 1, "p0-2"), rec(0, 2, "p1-1"), rec(0, 3, "p1-2"),
             rec(1, 0, "p0-1"), rec(1, 1, "p1-0")]
    reads = {
        "c0": [rec(0, 0, "p0-0"), rec(1, 0, "p0-1"), rec(0, 1, "p0-2"), rec(1, 1, "p1-0"), rec(0, 2, "p1-1")],
        "c1": [rec(1, 0, "p0-1"), rec(0, 0, "p0-0")],
    }
    attempted = ["p0-0", "p0-1", "p0-2", "p1-0", "p1-1", "p1-2"]
    return acked, reads, final, attempted


def failing(result):
    return {name for name, a in result["anomalies"].items() if a["count"]}


class CheckTest(unittest.TestCase):
    def test_clean_history_passes(self):
        acked, reads, final, attempted = clean_history()
        result = checker.check(acked, reads, final, attempted=attempted)
        self.assertTrue(result["valid"], result)
        self.assertEqual(failing(result), set())
        self.assertEqual(result["stats"]["acked"], 5)
        self.assertEqual(result["stats"]["read"], 7)
        self.assertEqual(result["stats"]["final"], 6)
        # p1-2 failed (or was never answered) but is in the log: allowed, counted.
        self.assertEqual(result["stats"]["unacked_present"], 1)
        self.assertEqual(result["stats"]["unacked_present_examples"], ["p1-2"])
        self.assertEqual(result["stats"]["foreign_present"], 0)

    def test_lost_acknowledged_write(self):
        acked, reads, final, attempted = clean_history()
        final = [r for r in final if r["value"] != "p0-2"]
        result = checker.check(acked, reads, final, attempted=attempted)
        self.assertFalse(result["valid"])
        # Lost from the middle of the log: its offset is a hole too.
        self.assertEqual(failing(result), {"lost", "holes"})
        example = result["anomalies"]["lost"]["examples"][0]
        self.assertEqual(example["value"], "p0-2")
        self.assertEqual((example["partition"], example["offset"]), (0, 1))
        self.assertEqual(example["seen_by_consumers"], ["c0"])

    def test_lost_write_nobody_saw(self):
        acked, reads, final, attempted = clean_history()
        acked.append(rec(1, 2, "p1-3", 1.5))
        result = checker.check(acked, reads, final, attempted=attempted + ["p1-3"])
        self.assertEqual(failing(result), {"lost"})
        self.assertEqual(result["anomalies"]["lost"]["examples"][0]["seen_by_consumers"], [])

    def test_value_read_by_a_consumer_then_lost(self):
        acked, reads, final, attempted = clean_history()
        reads["c1"].append(rec(0, 1, "p0-2"))
        reads["c1"].append(rec(0, 4, "p1-9"))  # never acknowledged, read, not in the final log
        result = checker.check(acked, reads, final, attempted=attempted + ["p1-9"])
        # c1 reached offset 4 past offsets 2 and 3 of the final log: a skip as well.
        self.assertEqual(failing(result), {"lost_read", "skips"})
        self.assertEqual(result["anomalies"]["lost_read"]["examples"], [{"value": "p1-9", "seen_by_consumers": ["c1"]}])

    def test_inconsistent_offset_between_reads(self):
        acked, reads, final, attempted = clean_history()
        # c1 read a different value at (0, 3) than the final reader did.
        reads["c1"].append(rec(0, 3, "p9-9"))
        result = checker.check(acked, reads, final, attempted=attempted)
        self.assertIn("inconsistent_offsets", failing(result))
        example = result["anomalies"]["inconsistent_offsets"]["examples"][0]
        self.assertEqual((example["partition"], example["offset"]), (0, 3))
        self.assertEqual(example["values"], {"p1-2": ["final"], "p9-9": ["c1"]})

    def test_acknowledged_offset_holding_another_value(self):
        acked, reads, final, attempted = clean_history()
        # The broker acknowledged p1-0 at (1, 1), but the log holds another value there and
        # p1-0 nowhere: inconsistent and lost.
        final = [r if (r["partition"], r["offset"]) != (1, 1) else rec(1, 1, "p1-7") for r in final]
        reads["c0"] = [r for r in reads["c0"] if r["value"] != "p1-0"]
        result = checker.check(acked, reads, final, attempted=attempted + ["p1-7"])
        self.assertEqual(failing(result), {"inconsistent_offsets", "lost"})
        example = result["anomalies"]["inconsistent_offsets"]["examples"][0]
        self.assertEqual(example["values"], {"p1-0": ["acked"], "p1-7": ["final"]})

    def test_duplicate_value_at_two_offsets(self):
        acked, reads, final, attempted = clean_history()
        final.append(rec(1, 2, "p0-1"))  # p0-1 is also at (1, 0)
        result = checker.check(acked, reads, final, attempted=attempted)
        # The copy comes after p1-0 although p0 wrote it first: out of order too.
        self.assertEqual(failing(result), {"duplicates", "producer_order"})
        self.assertEqual(result["anomalies"]["duplicates"]["examples"], [{"value": "p0-1", "positions": [[1, 0], [1, 2]]}])

    def test_duplicate_across_partitions_in_consumer_reads(self):
        acked, reads, final, attempted = clean_history()
        reads["c1"].append(rec(1, 5, "p0-0"))
        result = checker.check(acked, reads, final, attempted=attempted)
        self.assertIn("duplicates", failing(result))

    def test_nonmonotonic_offsets_within_one_consumer(self):
        acked, reads, final, attempted = clean_history()
        reads["c0"].append(rec(0, 1, "p0-2"))  # back from 2 to 1 on partition 0
        result = checker.check(acked, reads, final, attempted=attempted)
        self.assertEqual(failing(result), {"nonmonotonic"})
        example = result["anomalies"]["nonmonotonic"]["examples"][0]
        self.assertEqual(example, {"consumer": "c0", "partition": 0, "previous": 2, "offset": 1, "index": 5})

    def test_rereading_the_same_offset_is_nonmonotonic(self):
        acked, reads, final, attempted = clean_history()
        reads["c1"].append(rec(0, 0, "p0-0"))
        self.assertEqual(failing(checker.check(acked, reads, final, attempted=attempted)), {"nonmonotonic"})

    def test_different_consumers_and_partitions_are_independent(self):
        acked, reads, final, attempted = clean_history()
        # c1 reads partition 1 then partition 0 from the start: no anomaly.
        result = checker.check(acked, reads, final, attempted=attempted)
        self.assertEqual(result["anomalies"]["nonmonotonic"]["count"], 0)

    def test_a_consumer_skipping_committed_offsets_fails(self):
        acked, reads, final, attempted = clean_history()
        reads["c1"] = [rec(0, 0, "p0-0"), rec(0, 2, "p1-1")]
        result = checker.check(acked, reads, final, attempted=attempted)
        self.assertEqual(failing(result), {"skips"})
        self.assertEqual(result["anomalies"]["skips"]["examples"][0]["missed"], [1])

    def test_an_offset_reset_fails(self):
        acked, reads, final, attempted = clean_history()
        reset = {"partition": 0, "position": 2, "error": "Broker: Offset out of range"}
        result = checker.check(acked, reads, final, attempted=attempted, resets=[reset])
        self.assertEqual(failing(result), {"offset_resets"})
        self.assertEqual(result["anomalies"]["offset_resets"]["examples"], [reset])

    def test_a_producer_out_of_order_on_a_partition_fails(self):
        acked, reads, final, attempted = clean_history()
        # p1-2 before p1-1 in partition 0 (values swapped in the log, offsets kept).
        final = [rec(0, 0, "p0-0"), rec(0, 1, "p0-2"), rec(0, 2, "p1-2"), rec(0, 3, "p1-1"),
                 rec(1, 0, "p0-1"), rec(1, 1, "p1-0")]
        acked = [a for a in acked if a["value"] != "p1-1"]
        reads = {}
        result = checker.check(acked, reads, final, attempted=attempted)
        self.assertEqual(failing(result), {"producer_order"})
        example = result["anomalies"]["producer_order"]["examples"][0]
        self.assertEqual((example["partition"], example["producer"]), (0, "p1"))

    def test_a_hole_in_the_final_log_fails(self):
        acked, reads, final, attempted = clean_history()
        final = [r if r["value"] != "p1-2" else rec(0, 4, "p1-2") for r in final]
        result = checker.check(acked, reads, final, attempted=attempted)
        self.assertEqual(failing(result), {"holes"})
        self.assertEqual(result["anomalies"]["holes"]["examples"], [{"partition": 0, "after": 2, "next": 4}])

    def test_incomplete_final_read_fails(self):
        acked, reads, final, attempted = clean_history()
        result = checker.check(acked, reads, final, attempted=attempted, final_complete=False)
        self.assertEqual(failing(result), {"final_read_incomplete"})

    def test_foreign_values_are_counted(self):
        acked, reads, final, attempted = clean_history()
        final.append(rec(1, 2, "r0-0"))
        result = checker.check(acked, reads, final, attempted=attempted)
        self.assertTrue(result["valid"])
        self.assertEqual(result["stats"]["foreign_present"], 1)

    def test_acknowledgement_without_offset_counts_for_loss_only(self):
        acked, reads, final, attempted = clean_history()
        acked.append(rec(0, None, "p1-2", 1.6))  # in the final log at (0, 3)
        result = checker.check(acked, reads, final, attempted=attempted)
        self.assertTrue(result["valid"], result)
        self.assertEqual(result["stats"]["acked_without_offset"], 1)
        acked.append(rec(1, None, "p1-5", 1.7))  # nowhere
        result = checker.check(acked, reads, final, attempted=attempted + ["p1-5"])
        self.assertEqual(failing(result), {"lost"})
        self.assertEqual(result["anomalies"]["lost"]["examples"][0]["offset"], None)

    def test_examples_are_capped(self):
        acked = [rec(0, i, f"p0-{i}", float(i)) for i in range(20)]
        result = checker.check(acked, {}, [], attempted=[a["value"] for a in acked])
        self.assertEqual(result["anomalies"]["lost"]["count"], 20)
        self.assertEqual(len(result["anomalies"]["lost"]["examples"]), checker.EXAMPLES)


def session(consumer, number, partition, assigned, offsets, first_time=None):
    first_time = assigned + 0.1 if first_time is None else first_time
    reads = [dict(rec(partition, o, f"v{partition}-{o}"), time=first_time + i * 0.01) for i, o in enumerate(offsets)]
    return {"consumer": consumer, "session": number, "partition": partition, "assigned_time": assigned, "reads": reads}


def commit(partition, offset, start, end, ok=True):
    return {"partition": partition, "offset": offset, "start": start, "end": end, "ok": ok}


def group_final(n=10):
    return [rec(0, o, f"v0-{o}") for o in range(n)]


class GroupTest(unittest.TestCase):
    def test_handover_at_the_committed_offset_passes(self):
        sessions = [session("g0", 0, 0, 1.0, range(0, 5)), session("g1", 0, 0, 3.0, range(5, 10))]
        commits = [commit(0, 5, 2.0, 2.1)]
        result = checker.check([], {}, group_final(), sessions=sessions, commits=commits)
        self.assertTrue(result["valid"], result)
        self.assertEqual(result["stats"]["group"]["sessions_read"], 2)

    def test_starting_beyond_every_commit_is_a_skip(self):
        sessions = [session("g0", 0, 0, 1.0, range(0, 5)), session("g1", 0, 0, 3.0, range(7, 10))]
        commits = [commit(0, 5, 2.0, 2.1)]
        result = checker.check([], {}, group_final(), sessions=sessions, commits=commits)
        self.assertEqual(failing(result), {"group_skips"})
        self.assertEqual(result["anomalies"]["group_skips"]["examples"][0]["missed"], [5, 6])

    def test_a_commit_that_failed_at_the_client_may_still_explain_the_start(self):
        sessions = [session("g0", 0, 0, 1.0, range(0, 7)), session("g1", 0, 0, 3.0, range(7, 10))]
        commits = [commit(0, 5, 2.0, 2.1), commit(0, 7, 2.2, 2.5, ok=False)]
        result = checker.check([], {}, group_final(), sessions=sessions, commits=commits)
        self.assertTrue(result["valid"], result)

    def test_starting_below_an_acknowledged_commit_is_an_unexplained_reset(self):
        sessions = [session("g0", 0, 0, 1.0, range(0, 5)), session("g1", 0, 0, 3.0, range(0, 10))]
        commits = [commit(0, 5, 2.0, 2.1)]
        result = checker.check([], {}, group_final(), sessions=sessions, commits=commits)
        self.assertEqual(failing(result), {"group_rewinds"})

    def test_a_commit_acknowledged_after_the_assignment_does_not_bind_it(self):
        sessions = [session("g0", 0, 0, 1.0, range(0, 5)), session("g1", 0, 0, 3.0, range(3, 10))]
        commits = [commit(0, 3, 1.5, 1.6), commit(0, 5, 2.9, 3.2)]
        result = checker.check([], {}, group_final(), sessions=sessions, commits=commits)
        self.assertTrue(result["valid"], result)

    def test_a_session_is_checked_for_skips_within_itself(self):
        sessions = [session("g0", 0, 0, 1.0, [0, 1, 4, 5])]
        result = checker.check([], {}, group_final(6), sessions=sessions, commits=[])
        self.assertEqual(failing(result), {"skips"})

    def test_sessions_of_one_consumer_may_reread(self):
        sessions = [session("g0", 0, 0, 1.0, range(0, 5)), session("g0", 1, 0, 3.0, range(3, 10))]
        commits = [commit(0, 3, 1.5, 1.6)]
        result = checker.check([], {}, group_final(), sessions=sessions, commits=commits)
        self.assertTrue(result["valid"], result)


class AvailabilityTest(unittest.TestCase):
    def test_gaps_include_window_edges(self):
        longest, over = checker.gaps([10.5, 11.0, 14.0, 14.2], start=10.0, end=16.0)
        self.assertEqual(longest, 3.0)
        self.assertEqual(over, [{"from": 1.0, "to": 4.0, "seconds": 3.0}, {"from": 4.2, "to": 6.0, "seconds": 1.8}])

    def test_no_acks_is_one_gap(self):
        self.assertEqual(checker.gaps([], 0.0, 5.0), (5.0, [{"from": 0.0, "to": 5.0, "seconds": 5.0}]))

    def test_per_partition_and_per_second(self):
        acked = [rec(0, 0, "a", 100.1), rec(1, 0, "b", 100.2), rec(0, 1, "c", 100.3), rec(0, 2, "d", 102.5),
                 rec(1, 1, "e", 105.9)]
        stats = checker.availability(acked, start=100.0, end=106.0)
        self.assertEqual(stats["acks_per_second"], [3, 0, 1, 0, 0, 1, 0])
        self.assertEqual(stats["longest_per_partition_s"], {"0": 3.5, "1": 5.7})
        self.assertEqual(stats["longest_s"], 3.4)
        self.assertEqual([g["from"] for g in stats["over_threshold_per_partition"]["1"]], [0.2])

    def test_acks_outside_the_window_are_ignored(self):
        self.assertEqual(checker.per_second([99.0, 100.5, 107.0], 100.0, 102.0), [1, 0, 0])


class TruncationTest(unittest.TestCase):
    def test_cut_off_writes_must_be_gone(self):
        acked = [rec(0, 10, "r0-0", 1.0), rec(0, 11, "r0-1", 1.5), rec(0, 12, "r0-2", 3.0), rec(0, 13, "r0-3", 3.5)]
        final = [rec(0, 10, "r0-0"), rec(0, 11, "r0-1"), rec(0, 12, "p0-7"), rec(0, 13, "p0-8")]
        report = checker.truncation(acked, final, after=2.0)
        self.assertTrue(report["valid"], report)
        self.assertEqual((report["cut_off_acked"], report["truncated"]), (2, 2))
        self.assertEqual(report["truncated_examples"], ["r0-2", "r0-3"])

    def test_surviving_cut_off_write_is_a_violation(self):
        acked = [rec(0, 10, "r0-0", 1.0), rec(0, 11, "r0-1", 3.0)]
        final = [rec(0, 10, "r0-0"), rec(0, 11, "r0-1")]
        report = checker.truncation(acked, final, after=2.0)
        self.assertFalse(report["valid"])
        self.assertEqual(report["survived"]["count"], 1)
        self.assertEqual(report["survived"]["examples"][0]["value"], "r0-1")

    def test_moved_write_is_a_violation(self):
        acked = [rec(0, 10, "r0-0", 1.0)]
        final = [rec(0, 9, "x"), rec(0, 12, "r0-0")]
        report = checker.truncation(acked, final, after=2.0)
        self.assertFalse(report["valid"])
        self.assertEqual(report["moved"]["examples"], [{"value": "r0-0", "acked_at": [0, 10], "found_at": [0, 12]}])

    def test_acknowledgement_without_offset_cannot_move(self):
        acked = [rec(0, None, "r0-0", 1.0)]
        report = checker.truncation(acked, [rec(0, 3, "r0-0")], after=2.0)
        self.assertTrue(report["valid"], report)

    def test_unreplicated_write_before_isolation_may_be_lost(self):
        report = checker.truncation([rec(0, 10, "r0-0", 1.0)], [], after=2.0)
        self.assertTrue(report["valid"])
        self.assertEqual(report["lost_before"], 1)


if __name__ == "__main__":
    unittest.main()
