"""The local snapshot store on real directory trees: what counts as a completed snapshot, times, sizes, job ids,
exists/dispose, and path spellings."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from flinkops.api.snapshot_paths import normalise_snapshot_path, same_snapshot, snapshot_dir_path
from flinkops.errors import InvalidInput, PermanentError
from flinkops.snapshots.local import LocalSnapshotStore, UnsupportedSnapshotStorage, latest_checkpoint

JOB_A = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
JOB_B = "ffee00112233445566778899aabbccdd"
JOB_A_TWIN = "a1b2c3000000000000000000000000ff"  # same first 6 hex as JOB_A

STORE = LocalSnapshotStore()


def write(path: Path, size: int, mtime_ms: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    if mtime_ms is not None:
        os.utime(path, ns=(mtime_ms * 1_000_000, mtime_ms * 1_000_000))
    return path


def checkpoint(root: Path, job: str, n: int, *, time_ms: int | None = 1_700_000_000_000, state: int = 10) -> Path:
    directory = root / job / f"chk-{n}"
    write(directory / "state-0", state)
    if time_ms is not None:
        write(directory / "_metadata", 5, time_ms)
    return directory


def savepoint(root: Path, job: str, suffix: str, *, time_ms: int | None = 1_700_000_000_000) -> Path:
    directory = root / f"savepoint-{job[:6]}-{suffix}"
    write(directory / "op-state", 100)
    if time_ms is not None:
        write(directory / "_metadata", 20, time_ms)
    return directory


def uri(path: Path) -> str:
    return f"file:{path}"


# --------------------------------------------------------------------------------------------- listing


def test_list_returns_only_completed_checkpoints_and_savepoints_sorted_by_time(tmp_path: Path) -> None:
    cp, sp = tmp_path / "cp", tmp_path / "sp"
    checkpoint(cp, JOB_A, 3, time_ms=1_000_003_000)
    checkpoint(cp, JOB_A, 4, time_ms=None)  # in progress: no _metadata
    checkpoint(cp, JOB_A, 10, time_ms=1_000_010_000)
    (cp / JOB_A / "shared").mkdir()
    (cp / JOB_A / "taskowned").mkdir()
    (cp / "not-a-job-id" / "chk-1").mkdir(parents=True)
    write(cp / "not-a-job-id" / "chk-1" / "_metadata", 1)
    savepoint(sp, JOB_A, "0123456789ab", time_ms=1_000_005_000)
    savepoint(sp, JOB_A, "ba9876543210", time_ms=None)  # unfinished savepoint
    (sp / "random-dir").mkdir()
    write(sp / "random-dir" / "_metadata", 1)

    found = STORE.list(uri(cp), str(sp))

    assert [(s.kind, s.time_ms) for s in found] == [
        ("checkpoint", 1_000_003_000),
        ("savepoint", 1_000_005_000),
        ("checkpoint", 1_000_010_000),
    ]
    assert [s.checkpoint_id for s in found] == [3, None, 10]
    assert found[0].path == f"file:{cp}/{JOB_A}/chk-3"
    assert found[1].path == f"file:{sp}/savepoint-a1b2c3-0123456789ab"


def test_sizes_sum_every_file_under_the_snapshot_directory(tmp_path: Path) -> None:
    directory = checkpoint(tmp_path, JOB_A, 1, state=1000)
    write(directory / "nested" / "deeper" / "part", 234)
    (cp,) = STORE.list(str(tmp_path), None)
    assert cp.size_bytes == 1000 + 234 + 5  # state, nested file, _metadata


def test_checkpoint_ids_sort_numerically_and_job_ids_are_full(tmp_path: Path) -> None:
    for n in (2, 9, 10):
        checkpoint(tmp_path, JOB_A, n)  # equal times: the checkpoint number breaks the tie
    checkpoint(tmp_path, JOB_B, 1, time_ms=1_800_000_000_000)
    found = STORE.list(f"file://{tmp_path}", None)
    assert [(s.job_id, s.checkpoint_id) for s in found] == [(JOB_A, 2), (JOB_A, 9), (JOB_A, 10), (JOB_B, 1)]
    assert all(s.job_id_prefix == s.job_id[:6] for s in found if s.job_id)


def test_savepoint_job_ids_resolve_only_from_an_unambiguous_known_id(tmp_path: Path) -> None:
    savepoint(tmp_path, JOB_A, "000000000001")
    savepoint(tmp_path, JOB_B, "000000000002", time_ms=1_700_000_000_001)

    unresolved = STORE.list(None, str(tmp_path))
    assert [(s.job_id_prefix, s.job_id) for s in unresolved] == [("a1b2c3", None), ("ffee00", None)]

    resolved = STORE.list(None, str(tmp_path), job_ids=[JOB_A, JOB_B.upper()])
    assert [s.job_id for s in resolved] == [JOB_A, JOB_B]

    ambiguous = STORE.list(None, str(tmp_path), job_ids=iter([JOB_A, JOB_A_TWIN]))
    assert [s.job_id for s in ambiguous] == [None, None]


def test_missing_directories_hold_no_snapshots(tmp_path: Path) -> None:
    assert STORE.list(str(tmp_path / "nope"), str(tmp_path / "nope2")) == []
    assert STORE.list(None, None) == []
    assert STORE.latest_checkpoint(str(tmp_path / "nope"), JOB_A) is None
    assert STORE.latest_savepoint(str(tmp_path / "nope"), JOB_A) is None


def test_time_is_the_metadata_modification_time(tmp_path: Path) -> None:
    directory = savepoint(tmp_path, JOB_A, "00000000000a", time_ms=1_234_567_890_123)
    os.utime(directory / "op-state", ns=(9 * 10**18, 9 * 10**18))  # other files do not matter
    (sp,) = STORE.list(None, str(tmp_path))
    assert sp.time_ms == 1_234_567_890_123


# --------------------------------------------------------------------------------------------- latest


def test_latest_checkpoint_is_the_highest_completed_number(tmp_path: Path) -> None:
    checkpoint(tmp_path, JOB_A, 9, time_ms=2_000)
    checkpoint(tmp_path, JOB_A, 11, time_ms=1_000)  # the number decides, not the time
    checkpoint(tmp_path, JOB_A, 12, time_ms=None)
    checkpoint(tmp_path, JOB_B, 99)
    assert STORE.latest_checkpoint(f"file:///{tmp_path}/", JOB_A) == f"file:{tmp_path}/{JOB_A}/chk-11"
    assert STORE.latest_checkpoint(str(tmp_path), JOB_A.upper()) == f"file:{tmp_path}/{JOB_A}/chk-11"
    assert STORE.latest_checkpoint(str(tmp_path / JOB_A / "chk-9"), "..") is None


def test_module_level_latest_checkpoint_keeps_working_and_ignores_other_storage(tmp_path: Path) -> None:
    checkpoint(tmp_path, JOB_A, 5)
    assert latest_checkpoint(tmp_path.as_uri(), JOB_A) == f"file:{tmp_path}/{JOB_A}/chk-5"
    assert latest_checkpoint("s3://bucket/checkpoints", JOB_A) is None
    assert latest_checkpoint(str(tmp_path), JOB_B) is None


def test_latest_savepoint_matches_the_job_prefix_and_the_time_floor(tmp_path: Path) -> None:
    savepoint(tmp_path, JOB_A, "00000000000a", time_ms=1_000)
    savepoint(tmp_path, JOB_A, "00000000000b", time_ms=3_000)
    savepoint(tmp_path, JOB_A, "00000000000c", time_ms=None)  # newest but unfinished
    savepoint(tmp_path, JOB_B, "00000000000d", time_ms=9_000)
    assert STORE.latest_savepoint(str(tmp_path), JOB_A) == f"file:{tmp_path}/savepoint-a1b2c3-00000000000b"
    assert STORE.latest_savepoint(str(tmp_path), JOB_A, not_before_ms=3_000) is not None
    assert STORE.latest_savepoint(str(tmp_path), JOB_A, not_before_ms=3_001) is None
    assert STORE.latest_savepoint(str(tmp_path), JOB_B) == f"file:{tmp_path}/savepoint-ffee00-00000000000d"


# --------------------------------------------------------------------------------------------- exists / inspect


def test_exists_needs_metadata(tmp_path: Path) -> None:
    done = checkpoint(tmp_path, JOB_A, 1)
    unfinished = checkpoint(tmp_path, JOB_A, 2, time_ms=None)
    relocated = tmp_path / "copied-savepoint"  # a restore may point at any directory holding _metadata
    write(relocated / "_metadata", 3)

    assert STORE.exists(str(done))
    assert STORE.exists(f"file://{done}/")
    assert STORE.exists(f"file:{done}/_metadata")
    assert STORE.exists(str(relocated))
    assert not STORE.exists(str(unfinished))
    assert not STORE.exists(f"file:{unfinished}/_metadata")
    assert not STORE.exists(str(tmp_path / "missing"))
    assert not STORE.exists(str(tmp_path))


def test_inspect_describes_one_snapshot(tmp_path: Path) -> None:
    done = checkpoint(tmp_path / "cp", JOB_A, 7, time_ms=5_000)
    sp = savepoint(tmp_path / "sp", JOB_B, "abcdefabcdef", time_ms=6_000)

    chk = STORE.inspect(f"{done}/_metadata")
    assert chk is not None
    assert (chk.kind, chk.job_id, chk.checkpoint_id, chk.time_ms, chk.path) == (
        "checkpoint",
        JOB_A,
        7,
        5_000,
        f"file:{done}",
    )
    spt = STORE.inspect(uri(sp), job_ids=[JOB_B])
    assert spt is not None
    assert (spt.kind, spt.job_id, spt.job_id_prefix, spt.size_bytes) == ("savepoint", JOB_B, "ffee00", 120)
    assert STORE.inspect(str(checkpoint(tmp_path / "cp", JOB_A, 8, time_ms=None))) is None


# --------------------------------------------------------------------------------------------- dispose


def test_dispose_deletes_a_completed_snapshot_and_is_idempotent(tmp_path: Path) -> None:
    cp_dir = checkpoint(tmp_path / "cp", JOB_A, 1)
    sp_dir = savepoint(tmp_path / "sp", JOB_A, "0000000000ff")
    keep = checkpoint(tmp_path / "cp", JOB_A, 2)

    STORE.dispose(uri(cp_dir))
    STORE.dispose(f"file://{sp_dir}/_metadata")

    assert not cp_dir.exists() and not sp_dir.exists()
    assert keep.exists()
    assert sorted(p.name for p in (tmp_path / "cp" / JOB_A).iterdir()) == ["chk-2"]  # no leftovers
    STORE.dispose(uri(cp_dir))  # already gone: fine
    STORE.dispose(str(sp_dir))
    assert [s.checkpoint_id for s in STORE.list(str(tmp_path / "cp"), str(tmp_path / "sp"))] == [2]


def test_dispose_finishes_an_interrupted_earlier_attempt(tmp_path: Path) -> None:
    sp_dir = savepoint(tmp_path, JOB_A, "0000000000ee")
    tombstone = tmp_path / f".{sp_dir.name}.disposing"
    sp_dir.rename(tombstone)  # the previous attempt renamed, then crashed before deleting
    STORE.dispose(str(sp_dir))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "make",
    [
        lambda root: root,  # the whole storage directory
        lambda root: root / JOB_A,  # a job's checkpoint directory
        lambda root: root / JOB_A / "shared",  # incremental shared state
        lambda root: root / "copied-savepoint",  # restorable, but not a directory Flink named
        lambda root: root / "some-file.txt",
    ],
)
def test_dispose_refuses_what_is_not_a_snapshot_directory(tmp_path: Path, make: Callable[[Path], Path]) -> None:
    checkpoint(tmp_path, JOB_A, 1)
    (tmp_path / JOB_A / "shared").mkdir()
    write(tmp_path / "copied-savepoint" / "_metadata", 1)
    write(tmp_path / "some-file.txt", 1)
    target = make(tmp_path)
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    with pytest.raises(PermanentError, match="refusing to dispose"):
        STORE.dispose(str(target))
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before


def test_dispose_refuses_an_unfinished_checkpoint(tmp_path: Path) -> None:
    unfinished = checkpoint(tmp_path, JOB_A, 3, time_ms=None)
    with pytest.raises(PermanentError, match="_metadata"):
        STORE.dispose(str(unfinished))
    assert (unfinished / "state-0").exists()


def test_dispose_refuses_a_symlink_named_like_a_snapshot(tmp_path: Path) -> None:
    real = checkpoint(tmp_path, JOB_A, 1)
    link = tmp_path / JOB_A / "chk-2"
    link.symlink_to(real)
    with pytest.raises(PermanentError, match="symbolic link"):
        STORE.dispose(str(link))
    assert (real / "_metadata").exists()


# --------------------------------------------------------------------------------------------- paths


def test_other_storage_and_relative_paths_raise_errors_naming_the_path() -> None:
    with pytest.raises(UnsupportedSnapshotStorage, match="s3://bucket/sp"):
        STORE.list(None, "s3://bucket/sp")
    with pytest.raises(UnsupportedSnapshotStorage, match="s3://bucket/sp/savepoint-a1b2c3-000000000000"):
        STORE.dispose("s3://bucket/sp/savepoint-a1b2c3-000000000000")
    with pytest.raises(UnsupportedSnapshotStorage, match="s3"):
        STORE.exists("s3://bucket/x")
    with pytest.raises(InvalidInput, match="relative"):
        STORE.exists("state/savepoints/x")
    with pytest.raises(InvalidInput, match="host"):
        STORE.exists("file://elsewhere/x")


@pytest.mark.parametrize(
    ("spelling", "normalised"),
    [
        ("file:/a/b/chk-7", "file:/a/b/chk-7"),
        ("file:///a/b/chk-7", "file:/a/b/chk-7"),
        ("file://localhost/a/b/chk-7", "file:/a/b/chk-7"),
        ("FILE:///a//b/./chk-7/", "file:/a/b/chk-7"),
        ("/a/b/chk-7", "file:/a/b/chk-7"),
        ("  /a/b/../b/chk-7  ", "file:/a/b/chk-7"),
        ("s3://bucket/sp//savepoint-x/", "s3://bucket/sp/savepoint-x"),
        ("s3://bucket/", "s3://bucket"),
    ],
)
def test_normalise_spells_every_form_like_flink(spelling: str, normalised: str) -> None:
    assert normalise_snapshot_path(spelling) == normalised


def test_same_snapshot_compares_spellings_and_metadata_files() -> None:
    assert same_snapshot("file:///a/chk-1", "/a/chk-1/")
    assert same_snapshot("file:/a/chk-1/_metadata", "file://localhost/a/chk-1")
    assert not same_snapshot("file:/a/chk-1", "file:/a/chk-10")
    assert not same_snapshot("file:/a/chk-1", "s3://a/chk-1")
    assert not same_snapshot(None, "file:/a")
    assert not same_snapshot(None, None)
    assert same_snapshot("relative/x", "relative/x")
    assert not same_snapshot("", "")
    assert snapshot_dir_path("file:///a/chk-1/_metadata") == "file:/a/chk-1"
    for bad in ("", "relative", "file:relative", "file://host/x"):
        with pytest.raises(ValueError):
            normalise_snapshot_path(bad)
