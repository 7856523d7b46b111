"""Spell checkpoint and savepoint locations one way, so two spellings of one snapshot compare equal.

Flink prints local locations as ``file:/abs/dir/chk-7``; users and configs write ``file:///abs/dir/chk-7``,
``file://localhost/abs/...`` or a plain ``/abs/...``. ``normalise_snapshot_path`` turns all of these into
Flink's form; other schemes (``s3://bucket/key``) keep their scheme and authority and get the same path
clean-up (duplicate and trailing slashes, ``.`` and ``..``). ``same_snapshot`` also treats a snapshot
directory and its ``_metadata`` file as the same snapshot.

Called by: ``snapshots/`` (every path it returns is normalised) and ``core.retention`` (protected paths).

Invariant: pure string work, no file system access (symlinks are not resolved, percent escapes are kept as
written, exactly as Flink's own ``Path`` keeps them).
"""

from __future__ import annotations

import posixpath
import re

__all__ = [
    "CHECKPOINT_NAME",
    "JOB_ID",
    "METADATA_FILE",
    "SAVEPOINT_NAME",
    "job_id_with_prefix",
    "normalise_snapshot_path",
    "same_snapshot",
    "snapshot_dir_path",
]

METADATA_FILE = "_metadata"
#: The names Flink gives in snapshot storage, on any file system: ``<checkpoint dir>/<JOB_ID>/chk-<n>`` and
#: ``<savepoint dir>/savepoint-<first 6 hex of the job id>-<12 hex>``.
JOB_ID = re.compile(r"^[0-9a-f]{32}$")
CHECKPOINT_NAME = re.compile(r"^chk-(\d+)$")
SAVEPOINT_NAME = re.compile(r"^savepoint-([0-9a-f]{6})-[0-9a-f]{12}$")

_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*):(?P<rest>.*)$", re.DOTALL)
_LOCAL_HOSTS = ("", "localhost")


def _clean(path: str) -> str:
    """An absolute POSIX path without duplicate slashes, ``.``/``..`` segments or a trailing slash."""
    return posixpath.normpath("/" + path.lstrip("/"))


def normalise_snapshot_path(path: str) -> str:
    """``path`` in the one spelling flinkops uses: ``file:/abs/...`` for local paths, ``scheme://auth/...``
    otherwise.

    Raises ``ValueError`` naming the path when it is empty, relative, or a ``file:`` URI on another host.
    """
    text = path.strip()
    if not text:
        raise ValueError("empty snapshot path; write an absolute path such as 'file:/state/savepoints/...'")
    if text.startswith("/"):
        return "file:" + _clean(text)
    match = _SCHEME.match(text)
    if match is None:
        raise ValueError(
            f"snapshot path {path!r} is relative; write an absolute path ('/state/...') or a URI "
            "('file:///state/...', 's3://bucket/...')"
        )
    scheme, rest = match["scheme"].lower(), match["rest"]
    if rest.startswith("//"):
        authority, _, tail = rest[2:].partition("/")
    else:
        authority, tail = None, rest
    if scheme == "file":
        if authority is not None and authority.lower() not in _LOCAL_HOSTS:
            raise ValueError(f"snapshot path {path!r} names host {authority!r}; file: URIs must be local")
        if authority is None and not tail.startswith("/"):
            raise ValueError(f"snapshot path {path!r} is a relative file: URI; write 'file:///absolute/path'")
        return "file:" + _clean(tail)
    if authority is None:
        return f"{scheme}:{_clean(tail) if tail.startswith('/') else tail.rstrip('/')}"
    cleaned = _clean(tail) if tail.strip("/") else ""
    return f"{scheme}://{authority}{cleaned}"


def snapshot_dir_path(path: str) -> str:
    """The normalised snapshot directory of ``path``: the directory itself, or the parent of its ``_metadata``
    file. Raises ``ValueError`` like ``normalise_snapshot_path``."""
    normalised = normalise_snapshot_path(path)
    suffix = "/" + METADATA_FILE
    if normalised.endswith(suffix) and len(normalised) > len(suffix):
        head = normalised[: -len(suffix)]
        if not head.endswith(":") and not head.endswith("//"):
            return head
    return normalised


def same_snapshot(a: str | None, b: str | None) -> bool:
    """Whether ``a`` and ``b`` name the same snapshot, however each is spelled. ``None`` matches nothing.

    A path that cannot be normalised (relative, empty) only matches an identical string.
    """
    if a is None or b is None:
        return False
    try:
        return snapshot_dir_path(a) == snapshot_dir_path(b)
    except ValueError:
        return bool(a.strip()) and a.strip() == b.strip()


def job_id_with_prefix(prefix: str | None, known: tuple[str, ...]) -> str | None:
    """The one job id of ``known`` that a savepoint name's 6-character ``prefix`` fits; None for none or more."""
    if prefix is None:
        return None
    matches = {job for job in known if job.startswith(prefix)}
    return matches.pop() if len(matches) == 1 else None
