"""The verifier checker on synthetic FileSink output: each kind of damage must be caught and named."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

from support.verifier import (
    LogicRun,
    check,
    job_args,
    read_committed,
    replayed,
    trace_counts,
    trace_files,
    wait_for_records,
)

KEYS = 4


def line(seq: int, *, logic: str = "v1", count: int | None = None, keys: int = KEYS) -> str:
    """The line the job writes for ``seq`` (``count`` overrides the state's count)."""
    n = seq // keys + 1 if count is None else count
    text = f"{seq},{seq % keys},{n},{logic}"
    return text if logic == "v1" else f"{text},{(n - 1) * keys + seq % keys}"


def write_part(directory: Path, name: str, lines: Iterable[str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text("".join(f"{text}\n" for text in lines))
    return path


def subtask_parts(directory: Path, seqs: Iterable[int], *, keys: int = KEYS, per_file: int = 10, **kw: str) -> None:
    """Split ``seqs`` like a job at parallelism 2: even keys to one subtask, odd keys to the other."""
    for subtask in (0, 1):
        mine = [s for s in seqs if (s % keys) % 2 == subtask]
        for index in range(0, len(mine), per_file):
            chunk = mine[index : index + per_file]
            write_part(
                directory, f"part-{subtask}abc-{index // per_file}.csv", (line(s, keys=keys, **kw) for s in chunk)
            )


def test_complete_output_is_ok(tmp_path: Path) -> None:
    subtask_parts(tmp_path, range(100))
    report = check(tmp_path, keys=KEYS, expect_records=100)
    assert report.ok, report.summary()
    assert (report.total, report.distinct, report.max_seq) == (100, 100, 99)
    assert report.logic_counts == {"v1": 100} and report.logic_started == {"v1": 0}
    assert "OK" in report.summary()


def test_lost_record_is_missing(tmp_path: Path) -> None:
    subtask_parts(tmp_path, [s for s in range(100) if s != 41])
    report = check(tmp_path, keys=KEYS, expect_records=100)
    assert not report.ok
    assert report.missing == [41]
    assert not report.duplicates and not report.state_breaks
    assert "MISSING: 1 seqs: 41" in report.summary()


def test_lost_tail_is_missing_only_against_expect_records(tmp_path: Path) -> None:
    subtask_parts(tmp_path, range(90))
    assert check(tmp_path, keys=KEYS).ok  # without a target, the prefix 0..89 is complete
    report = check(tmp_path, keys=KEYS, expect_records=100)
    assert report.missing == list(range(90, 100))
    assert "90-99" in report.summary()


def test_duplicate_is_caught(tmp_path: Path) -> None:
    subtask_parts(tmp_path, range(50))
    write_part(tmp_path, "part-replay-0.csv", [line(7), line(8)])  # same lines committed a second time
    report = check(tmp_path, keys=KEYS, expect_records=50)
    assert not report.ok
    assert report.duplicates == {7: 2, 8: 2}
    assert report.total == 52 and report.distinct == 50
    assert "DUPLICATES: 2 seqs" in report.summary() and "7-8" in report.summary()


def test_duplicates_are_caught_in_live_mode(tmp_path: Path) -> None:
    subtask_parts(tmp_path, range(50))
    write_part(tmp_path, "part-again-0.csv", [line(3)])
    assert check(tmp_path, keys=KEYS, live=True).duplicates == {3: 2}


def test_state_reset_is_a_state_break(tmp_path: Path) -> None:
    # A run restored the source position but not the counts: from seq 60 on every key counts from 1 again.
    subtask_parts(tmp_path, range(60))
    write_part(tmp_path, "part-reset-0.csv", (line(s, count=(s - 60) // KEYS + 1) for s in range(60, 80)))
    report = check(tmp_path, keys=KEYS, expect_records=80)
    assert not report.ok
    assert [r.seq for r in report.state_breaks] == list(range(60, 80))
    assert len(report.state_lost) == 20 and not report.state_overcounted
    assert not report.missing and not report.duplicates
    summary = report.summary()
    assert "STATE BREAKS: 20 records (20 count too low" in summary
    assert "seq 60 key 0 count 1 (expected 16" in summary


def test_counted_twice_is_a_state_break(tmp_path: Path) -> None:
    subtask_parts(tmp_path, range(40))
    part = tmp_path / "part-0abc-0.csv"
    part.write_text(part.read_text().replace(f"{line(2)}\n", f"{line(2, count=2)}\n"))  # seq 2 counted twice
    report = check(tmp_path, keys=KEYS)
    assert [r.seq for r in report.state_overcounted] == [2] and not report.state_lost
    assert not report.missing and not report.ok
    assert "1 too high: counted twice" in report.summary()


def test_version_switch_is_reported_and_ok(tmp_path: Path) -> None:
    subtask_parts(tmp_path / "a", range(0, 37))
    subtask_parts(tmp_path / "b", range(37, 100), logic="v2")
    report = check(tmp_path, keys=KEYS, expect_records=100)
    assert report.ok, report.summary()
    assert report.logic_counts == {"v1": 37, "v2": 63}
    assert report.logic_started == {"v1": 0, "v2": 37}
    assert report.logic_runs == [LogicRun("v1", 0, 36, 37), LogicRun("v2", 37, 99, 63)]
    assert "v2 63 records from seq 37" in report.summary()
    records = {r.seq: r for r in read_committed(tmp_path)}
    assert records[36].check is None and records[37].check == 37


def test_rollback_shows_three_runs(tmp_path: Path) -> None:
    subtask_parts(tmp_path / "a", range(0, 20))
    subtask_parts(tmp_path / "b", range(20, 30), logic="v3")
    subtask_parts(tmp_path / "c", range(30, 50), logic="v2")
    report = check(tmp_path, keys=KEYS, expect_records=50)
    assert report.ok
    assert [(r.logic, r.first_seq, r.last_seq) for r in report.logic_runs] == [
        ("v1", 0, 19),
        ("v3", 20, 29),
        ("v2", 30, 49),
    ]


def test_wrong_check_field_is_malformed(tmp_path: Path) -> None:
    write_part(tmp_path, "part-x-0.csv", [line(0, logic="v2"), "1,1,1,v2,999", "2,2,1", "3,3,1,v9", "x,y,z,v1"])
    report = check(tmp_path, keys=KEYS)
    assert not report.ok
    assert len(report.malformed) == 4, report.malformed
    assert "check field 999" in report.summary()
    with pytest.raises(ValueError, match="malformed"):
        read_committed(tmp_path)


def test_key_that_does_not_match_seq_is_malformed(tmp_path: Path) -> None:
    write_part(tmp_path, "part-x-0.csv", ["0,0,1,v1", "1,2,1,v1"])
    assert check(tmp_path, keys=KEYS).malformed


def test_in_progress_and_pending_files_are_ignored(tmp_path: Path) -> None:
    subtask_parts(tmp_path, range(40))
    # What FileSink leaves while writing / before the checkpoint commits: hidden files, possibly torn.
    write_part(tmp_path, ".part-0abc-9.csv.inprogress.1234", [line(40), line(44), "48,0,1"])
    write_part(tmp_path, ".part-0abc-9.csv.pending", [line(0)])
    (tmp_path / ".hidden").mkdir()
    write_part(tmp_path / ".hidden", "part-x-0.csv", [line(1)])
    report = check(tmp_path, keys=KEYS, expect_records=40)
    assert report.ok, report.summary()
    assert report.files == 4 and report.total == 40
    assert len(read_committed(tmp_path)) == 40


def test_empty_or_absent_output(tmp_path: Path) -> None:
    assert check(tmp_path / "nothing", keys=KEYS).ok
    report = check(tmp_path / "nothing", keys=KEYS, expect_records=3)
    assert report.missing == [0, 1, 2] and not report.ok


def test_unexpected_seqs_beyond_expect_records(tmp_path: Path) -> None:
    subtask_parts(tmp_path, range(12))
    report = check(tmp_path, keys=KEYS, expect_records=10)
    assert report.unexpected == [10, 11] and not report.ok


def test_live_mode_tolerates_in_flight_commits(tmp_path: Path) -> None:
    # Subtask 0 (even keys) has committed through seq 99, subtask 1 (odd keys) only through seq 79.
    seqs = [s for s in range(100) if (s % KEYS) % 2 == 0 or s < 80]
    subtask_parts(tmp_path, seqs)
    live = check(tmp_path, keys=KEYS, live=True)
    assert live.ok, live.summary()
    exact = check(tmp_path, keys=KEYS)
    assert not exact.ok and exact.missing == [s for s in range(80, 99) if (s % KEYS) % 2 == 1]


def test_live_mode_catches_a_gap_behind_a_later_record_of_the_key(tmp_path: Path) -> None:
    seqs = [s for s in range(100) if s not in (50, 51)]  # keys 2 and 3 have later records committed
    subtask_parts(tmp_path, seqs)
    report = check(tmp_path, keys=KEYS, live=True)
    assert report.missing == [50, 51]
    assert not report.ok


def test_live_mode_catches_a_lost_range_on_both_subtasks(tmp_path: Path) -> None:
    subtask_parts(tmp_path, [s for s in range(200) if not 100 <= s < 140])
    assert check(tmp_path, keys=KEYS, live=True).missing == list(range(100, 140))


def test_wait_for_records(tmp_path: Path) -> None:
    subtask_parts(tmp_path, range(10))
    assert wait_for_records(tmp_path, 10, timeout=1) == 10
    with pytest.raises(TimeoutError, match="10 records committed"):
        wait_for_records(tmp_path, 11, timeout=0.6)


def test_replayed_counts_reprocessed_seqs(tmp_path: Path) -> None:
    (tmp_path / "trace-0-a.txt").write_text("0\n1\n2\n3\n")
    (tmp_path / "trace-0-b.txt").write_text("2\n3\n4\n5\n6")  # restored after seq 1; torn last line
    (tmp_path / "trace-1-c.txt").write_text("3\n")
    (tmp_path / "other.txt").write_text("0\n")
    assert replayed(tmp_path) == 3  # 2 twice, 3 three times
    assert trace_counts(tmp_path)[3] == 3 and 6 not in trace_counts(tmp_path)
    assert replayed(tmp_path / "absent") == 0


def test_trace_lines_with_timestamps(tmp_path: Path) -> None:
    (tmp_path / "trace-0-a.txt").write_text("0,1000\n1,1005\n2,1010\n")
    (tmp_path / "trace-0-b.txt").write_text("2,2000\n3,2004\n4,20")  # restored after seq 1; torn last line
    (tmp_path / "trace-1-c.txt").write_text("5\n")  # a file written without --trace-timestamps
    assert replayed(tmp_path) == 1 and trace_counts(tmp_path)[2] == 2 and 4 not in trace_counts(tmp_path)
    files = trace_files(tmp_path)
    assert [(f.name, f.subtask) for f in files] == [("trace-0-a.txt", 0), ("trace-0-b.txt", 0), ("trace-1-c.txt", 1)]
    assert files[1].seqs == (2, 3) and files[1].times == (2000, 2004)
    assert files[2].times == (None,)
    assert job_args("out", trace="t", trace_timestamps=True)[-3:] == ["--trace", "t", "--trace-timestamps"]
    with pytest.raises(ValueError, match="trace directory"):
        job_args("out", trace_timestamps=True)
