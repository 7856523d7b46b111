"""Check the output of the verifier job (``flinkops.testjobs.VerifierJob``) record by record.

The job emits seq = 0, 1, 2, ... from one ordered source, keys each record by ``key = seq % keys``, counts the
records of each key in keyed state and commits one line per record through an exactly-once FileSink::

    seq,key,count,v1
    seq,key,count,v2,check      # v2 and v3: check = (count - 1) * keys + key, which equals seq
    seq,key,count,v3,check

When nothing was lost, nothing duplicated and the keyed state survived every upgrade, restore and failure,
the committed lines hold every seq exactly once and every line has ``count == seq // keys + 1``.

API:

* :data:`ENTRY_CLASS` is the job's class in the test jobs jar (``support.testjobs.testjobs_jar()``);
  :func:`job_args` builds its argument list.
* :func:`check` reads the committed output and returns a :class:`VerifierReport`; assert on ``report.ok`` with
  ``report.summary()`` as the message::

      report = check(output_dir, keys=64, expect_records=3000)
      assert report.ok, report.summary()

* :func:`read_committed` returns the committed :class:`Record` s (hidden in-progress/pending files are skipped),
  :func:`wait_for_records` polls until at least N records are committed.
* :func:`replayed` counts the extra processings in a ``--trace`` directory (records processed again after a
  restore); :func:`trace_counts` gives the per-seq counts. Trace lines are ``seq`` or, with
  ``--trace-timestamps``, ``seq,epochMillis``; both are read. :func:`trace_files` returns each trace file's
  entries with their times (benchmarks use them to time the output gap of an upgrade or a recovery).

Two checking modes, because the sink subtasks commit a checkpoint's files at slightly different moments:

* **exact** (default): for a job that FINISHED, or that was stopped with a savepoint (both leave every sink
  subtask fully committed). Every seq in ``0..expect_records-1`` (or ``0..max committed seq`` without
  ``expect_records``) must be present.
* **live** (``live=True``): for a running job, or one that was cancelled, killed or failed (the last completed
  checkpoint's files may not be committed yet). A seq is only required when a *later record of the same key*
  is committed. Each key is owned by one counter/sink subtask, which receives the key's records in seq order
  over one channel and commits its files checkpoint by checkpoint, so a committed record implies that every
  earlier record of its key is committed too, and a gap before it is a real loss, not a commit in flight.
  This requires every seq below the lowest per-key high-water mark (a bound never above the lowest
  per-subtask high-water mark) and also catches gaps within a key above it. What it cannot see live is the
  loss of a key's newest records while its subtask goes on committing other keys; exact mode catches that.

Either mode requires no duplicates and no state breaks; ``expect_records`` also flags seqs at or above it.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "ENTRY_CLASS",
    "LogicRun",
    "Record",
    "TraceFile",
    "VerifierReport",
    "check",
    "job_args",
    "read_committed",
    "replayed",
    "trace_counts",
    "trace_files",
    "wait_for_records",
]

ENTRY_CLASS = "flinkops.testjobs.VerifierJob"
LOGIC_VERSIONS = ("v1", "v2", "v3")
_EXAMPLES = 5  # examples per problem kind in a summary


@dataclass(frozen=True)
class Record:
    """One committed output line."""

    seq: int
    key: int
    count: int
    logic: str
    check: int | None  # v2/v3 only: (count - 1) * keys + key as the job computed it
    file: str  # part file name, for error messages

    def expected_count(self, keys: int) -> int:
        return self.seq // keys + 1


@dataclass(frozen=True)
class LogicRun:
    """A maximal run of consecutive committed seqs (in seq order) written by one logic version."""

    logic: str
    first_seq: int
    last_seq: int
    records: int


@dataclass
class VerifierReport:
    """What :func:`check` found. ``ok`` is the verdict; ``summary()`` explains it."""

    output_dir: Path
    keys: int
    expect_records: int | None
    live: bool
    files: int = 0  # committed part files read
    total: int = 0  # committed records (lines), duplicates included
    distinct: int = 0  # distinct seqs
    max_seq: int | None = None
    duplicates: dict[int, int] = field(default_factory=dict)  # seq -> times committed (only seqs seen > 1)
    missing: list[int] = field(default_factory=list)  # required seqs not committed, ascending
    unexpected: list[int] = field(default_factory=list)  # distinct seqs >= expect_records, ascending
    state_breaks: list[Record] = field(default_factory=list)  # count != seq // keys + 1, by seq
    malformed: list[str] = field(default_factory=list)  # "file:line: text: why"
    logic_counts: dict[str, int] = field(default_factory=dict)  # logic version -> committed records
    logic_started: dict[str, int] = field(default_factory=dict)  # logic version -> lowest seq it wrote
    logic_runs: list[LogicRun] = field(default_factory=list)  # switches between versions, in seq order

    @property
    def ok(self) -> bool:
        return not (self.duplicates or self.missing or self.unexpected or self.state_breaks or self.malformed)

    @property
    def state_lost(self) -> list[Record]:
        """State breaks with a count below the expected one (state lost or reset)."""
        return [r for r in self.state_breaks if r.count < r.expected_count(self.keys)]

    @property
    def state_overcounted(self) -> list[Record]:
        """State breaks with a count above the expected one (records counted twice in state)."""
        return [r for r in self.state_breaks if r.count > r.expected_count(self.keys)]

    def summary(self) -> str:
        mode = "live" if self.live else "exact"
        expected = f", expect_records={self.expect_records}" if self.expect_records is not None else ""
        lines = [
            f"verifier {'OK' if self.ok else 'FAILED'} ({mode}, keys={self.keys}{expected}) for {self.output_dir}:",
            f"  {self.total} records in {self.files} committed files, {self.distinct} distinct seqs, "
            f"max seq {self.max_seq}",
            "  logic: "
            + (
                ", ".join(
                    f"{logic} {count} records from seq {self.logic_started[logic]}"
                    for logic, count in sorted(self.logic_counts.items(), key=lambda kv: self.logic_started[kv[0]])
                )
                or "none"
            ),
        ]
        if len(self.logic_runs) > 1:
            lines.append(
                "  runs: " + " -> ".join(f"{r.logic}[{r.first_seq}..{r.last_seq}]" for r in self.logic_runs[:20])
            )
        if self.duplicates:
            extra = sum(self.duplicates.values()) - len(self.duplicates)
            shown = ", ".join(f"{seq} x{n}" for seq, n in sorted(self.duplicates.items())[:_EXAMPLES])
            lines.append(
                f"  DUPLICATES: {len(self.duplicates)} seqs committed more than once ({extra} extra records), "
                f"in {_ranges(sorted(self.duplicates))}; e.g. {shown}"
            )
        if self.missing:
            lines.append(f"  MISSING: {len(self.missing)} seqs: {_ranges(self.missing)}")
        if self.unexpected:
            lines.append(
                f"  UNEXPECTED: {len(self.unexpected)} seqs >= expect_records {self.expect_records}: "
                f"{_ranges(self.unexpected)}"
            )
        if self.state_breaks:
            lost, over = len(self.state_lost), len(self.state_overcounted)
            shown = "; ".join(
                f"seq {r.seq} key {r.key} count {r.count} (expected {r.expected_count(self.keys)}, {r.logic}, {r.file})"
                for r in self.state_breaks[:_EXAMPLES]
            )
            lines.append(
                f"  STATE BREAKS: {len(self.state_breaks)} records ({lost} count too low: state lost/reset; "
                f"{over} too high: counted twice), first at seq {self.state_breaks[0].seq}; e.g. {shown}"
            )
        if self.malformed:
            lines.append(f"  MALFORMED: {len(self.malformed)} lines; e.g. " + " | ".join(self.malformed[:_EXAMPLES]))
        return "\n".join(lines)


def job_args(
    output: Path | str,
    *,
    records: int = 0,
    rate: float = 100,
    keys: int = 64,
    logic: str = "v1",
    fail_after: int | None = None,
    trace: Path | str | None = None,
    checkpoint_interval_ms: int = 1000,
    trace_timestamps: bool = False,
) -> list[str]:
    """The VerifierJob's arguments. ``records=0`` runs unbounded, ``rate=0`` unthrottled; ``fail_after`` is
    for ``logic="v3"`` (records each counter subtask processes before it throws); ``trace`` turns on the
    replay side channel, ``trace_timestamps`` adds the processing time to each of its lines;
    ``checkpoint_interval_ms=0`` leaves checkpointing to the cluster configuration."""
    if trace_timestamps and trace is None:
        raise ValueError("trace_timestamps needs a trace directory")
    if logic not in LOGIC_VERSIONS:
        raise ValueError(f"logic must be one of {LOGIC_VERSIONS}, got {logic!r}")
    args = [
        "--output",
        str(output),
        "--records",
        str(records),
        "--rate",
        str(rate),
        "--keys",
        str(keys),
        "--logic",
        logic,
        "--checkpoint-interval",
        str(checkpoint_interval_ms),
    ]
    if fail_after is not None:
        args += ["--fail-after", str(fail_after)]
    if trace is not None:
        args += ["--trace", str(trace)]
    if trace_timestamps:
        args.append("--trace-timestamps")
    return args


def _ranges(seqs: Sequence[int], limit: int = 10) -> str:
    """``[0, 1, 2, 5, 7, 8]`` -> ``"0-2, 5, 7-8"`` (at most ``limit`` ranges, then "...")."""
    parts: list[str] = []
    start = prev = None
    for seq in seqs:
        if prev is not None and seq == prev + 1:
            prev = seq
            continue
        if start is not None:
            parts.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = seq
    if start is not None:
        parts.append(str(start) if start == prev else f"{start}-{prev}")
    if len(parts) > limit:
        return ", ".join(parts[:limit]) + f", ... ({len(parts) - limit} more ranges)"
    return ", ".join(parts)


def _committed_files(output_dir: Path) -> list[Path]:
    """Committed part files under ``output_dir``, sorted. FileSink keeps in-progress and pending files hidden
    (dot-prefixed); anything hidden or ``_``-prefixed, at any depth, is skipped."""
    found: list[Path] = []
    if not output_dir.is_dir():
        return found
    for root, dirs, files in os.walk(output_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
        found.extend(Path(root) / name for name in files if not name.startswith((".", "_")))
    return sorted(found)


def _parse(line: str, where: str) -> Record:
    fields = line.split(",")
    if len(fields) < 4:
        raise ValueError("expected seq,key,count,logic[,check]")
    seq, key, count = int(fields[0]), int(fields[1]), int(fields[2])
    logic = fields[3]
    if logic not in LOGIC_VERSIONS:
        raise ValueError(f"unknown logic version {logic!r}")
    if logic == "v1":
        if len(fields) != 4:
            raise ValueError("v1 lines have 4 fields")
        check_value = None
    else:
        if len(fields) != 5:
            raise ValueError(f"{logic} lines have 5 fields")
        check_value = int(fields[4])
    return Record(seq, key, count, logic, check_value, where)


def _scan(output_dir: Path) -> tuple[int, list[Record], list[str]]:
    """(files, records, malformed lines) of the committed output."""
    records: list[Record] = []
    malformed: list[str] = []
    files = _committed_files(output_dir)
    for path in files:
        name = str(path.relative_to(output_dir))
        text = path.read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), start=1):
            if not line:
                continue
            try:
                records.append(_parse(line, name))
            except ValueError as error:
                malformed.append(f"{name}:{number}: {line[:80]!r}: {error}")
        if text and not text.endswith("\n"):
            malformed.append(f"{name}: committed file does not end with a newline (torn write?)")
    return len(files), records, malformed


def read_committed(output_dir: Path | str) -> list[Record]:
    """Every record in the committed part files of ``output_dir``, in file order.

    In-progress and pending files (hidden) are ignored. Raises ``ValueError`` on a line that is not verifier
    output; :func:`check` reports such lines instead of raising.
    """
    _, records, malformed = _scan(Path(output_dir))
    if malformed:
        raise ValueError(f"{len(malformed)} malformed lines in {output_dir}: {malformed[0]}")
    return records


def wait_for_records(output_dir: Path | str, at_least: int, *, timeout: float = 120.0) -> int:
    """Poll until at least ``at_least`` records are committed in ``output_dir``; returns the count.

    Raises ``TimeoutError`` with the last count after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        _, records, _ = _scan(Path(output_dir))
        if len(records) >= at_least:
            return len(records)
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{len(records)} records committed in {output_dir} after {timeout}s, wanted {at_least}")
        time.sleep(0.5)  # poll interval, not a synchronisation point


def check(
    output_dir: Path | str,
    *,
    keys: int,
    expect_records: int | None = None,
    live: bool = False,
) -> VerifierReport:
    """Verify the committed output of a verifier job run with ``--keys keys``.

    ``expect_records``: the job ran with ``--records N`` and is done: require exactly the seqs ``0..N-1``.
    Without it, exact mode requires ``0..max committed seq``. ``live=True``: the job may still be running or
    was not stopped cleanly; only seqs followed by a committed record of the same key are required (see the
    module docstring). Duplicates, state breaks and malformed lines always fail the check.
    """
    if keys <= 0:
        raise ValueError(f"keys must be > 0, got {keys}")
    directory = Path(output_dir)
    files, records, malformed = _scan(directory)
    report = VerifierReport(output_dir=directory, keys=keys, expect_records=expect_records, live=live)
    report.files = files
    report.total = len(records)
    report.malformed = malformed

    seen = Counter(r.seq for r in records)
    report.distinct = len(seen)
    report.max_seq = max(seen) if seen else None
    report.duplicates = {seq: n for seq, n in sorted(seen.items()) if n > 1}

    for r in records:
        if r.key != r.seq % keys:
            report.malformed.append(f"{r.file}: seq {r.seq} has key {r.key}, expected {r.seq % keys}")
        elif r.check is not None and r.check != (r.count - 1) * keys + r.key:
            report.malformed.append(
                f"{r.file}: seq {r.seq} {r.logic} check field {r.check} != (count-1)*keys+key "
                f"{(r.count - 1) * keys + r.key}"
            )
    report.state_breaks = sorted(
        (r for r in records if r.count != r.expected_count(keys)), key=lambda r: (r.seq, r.count)
    )

    if expect_records is not None:
        report.unexpected = [seq for seq in sorted(seen) if seq >= expect_records or seq < 0]
    report.missing = _missing(seen, keys, expect_records, live)

    _logic(report, records)
    return report


def _missing(seen: Counter[int], keys: int, expect_records: int | None, live: bool) -> list[int]:
    if not live:
        end = expect_records if expect_records is not None else (max(seen) + 1 if seen else 0)
        return [seq for seq in range(end) if seq not in seen]
    # Live: per key, every seq below the key's highest committed seq is required.
    high: dict[int, int] = {}
    for seq in seen:
        if seq >= 0 and (expect_records is None or seq < expect_records):
            key = seq % keys
            if seq > high.get(key, -1):
                high[key] = seq
    missing = [seq for key, top in high.items() for seq in range(key, top, keys) if seq not in seen]
    return sorted(missing)


def _logic(report: VerifierReport, records: Iterable[Record]) -> None:
    by_seq = sorted(records, key=lambda r: r.seq)
    for r in by_seq:
        report.logic_counts[r.logic] = report.logic_counts.get(r.logic, 0) + 1
        report.logic_started.setdefault(r.logic, r.seq)
    runs: list[LogicRun] = []
    for r in by_seq:
        last = runs[-1] if runs else None
        if last is not None and last.logic == r.logic:
            runs[-1] = LogicRun(r.logic, last.first_seq, r.seq, last.records + 1)
        else:
            runs.append(LogicRun(r.logic, r.seq, r.seq, 1))
    report.logic_runs = runs


@dataclass(frozen=True)
class TraceFile:
    """One trace file: the counter subtask that wrote it, and its entries in the order processed.

    ``times`` holds each entry's processing time in epoch milliseconds (``--trace-timestamps``), or None for
    an entry written without one.
    """

    name: str
    subtask: int
    seqs: tuple[int, ...]
    times: tuple[int | None, ...]


def _trace_entries(path: Path) -> Iterator[tuple[int, int | None]]:
    text = path.read_text(encoding="utf-8", errors="replace")
    complete = text if text.endswith("\n") else text.rsplit("\n", 1)[0] if "\n" in text else ""
    for line in complete.splitlines():  # a killed task may leave a torn last line: skip it
        if line:
            seq, _, when = line.partition(",")
            yield int(seq), int(when) if when else None


def _trace_paths(trace_dir: Path) -> list[Path]:
    return sorted(trace_dir.glob("trace-*.txt")) if trace_dir.is_dir() else []


def _trace_lines(trace_dir: Path) -> Iterator[int]:
    for path in _trace_paths(trace_dir):
        for seq, _ in _trace_entries(path):
            yield seq


def trace_files(trace_dir: Path | str) -> list[TraceFile]:
    """Every ``trace-<subtask>-<uuid>.txt`` file in a ``--trace`` directory (a new one per task start), by name."""
    found: list[TraceFile] = []
    for path in _trace_paths(Path(trace_dir)):
        entries = list(_trace_entries(path))
        subtask = path.name.split("-")[1]
        found.append(
            TraceFile(
                name=path.name,
                subtask=int(subtask) if subtask.isdigit() else -1,
                seqs=tuple(seq for seq, _ in entries),
                times=tuple(when for _, when in entries),
            )
        )
    return found


def trace_counts(trace_dir: Path | str) -> Counter[int]:
    """How many times each seq was processed by the counter, from a ``--trace`` directory."""
    return Counter(_trace_lines(Path(trace_dir)))


def replayed(trace_dir: Path | str) -> int:
    """Extra processings in a ``--trace`` directory: the sum over seqs of (times processed - 1).

    After a restore from a checkpoint the job re-processes the records that followed that checkpoint; this
    counts them (a seq replayed by two restores counts twice). 0 when every seq was processed once.
    """
    return sum(n - 1 for n in trace_counts(trace_dir).values() if n > 1)
