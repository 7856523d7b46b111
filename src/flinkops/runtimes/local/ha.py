"""What the local runtime reads from and tidies in Flink's ZooKeeper high-availability metadata.

Flink (>= 1.15) keeps, below ``<path.root>/<cluster-id>`` in ZooKeeper:

- ``leader/latch/``: one ephemeral sequential node per JobManager process (a Curator leader latch); the process
  that owns the lowest one leads every component of the cluster;
- ``leader/<component>/connection_info``: the address the leader publishes per component (ephemeral, owned by
  the leader's session), for ``rest_server`` its REST URL (``http://127.0.0.1:8081``), Java-serialized;
- ``execution-plans/``, ``jobs/<job id>/...``: submitted job graphs and completed-checkpoint pointers, with
  ephemeral ``locks`` children owned by the JobManager that uses them.

Three things follow, each a function here:

- ``leader_rest_url``: the leader is whoever published the ``rest_server`` connection info; the runtime trusts
  it only when it names the REST port of a JobManager it sees alive.
- ``release_dead_sessions``: a SIGKILLed JobManager's session, and with it its latch node, outlives the
  process until ZooKeeper expires it. The runtime knows the process is dead, reads its session id from its own
  log (the ZooKeeper client logs "Session establishment complete ... session id = 0x...") and deletes the
  ephemeral nodes that session still owns: the standby's latch watch fires at once instead of after the session
  timeout. Only nodes owned by a session that a dead process established are touched, so a live leader can
  never lose its latch this way.
- ``remove_cluster_metadata``: a cluster that flinkops deletes is never recovered from HA metadata (a new
  deployment starts from a checkpoint or savepoint that the controller chose, under a new job id), so what it
  left in ZooKeeper and in a local ``high-availability.storageDir`` is removed; otherwise the next cluster with
  the same id would also recover the old job.

Called by: ``flinkops.runtimes.local.runtime``.
"""

from __future__ import annotations

import logging
import re
import shutil
import struct
import urllib.parse
from collections.abc import Iterable
from pathlib import Path

from flinkops.flink.config import ZooKeeperHA
from flinkops.runtimes.local.zookeeper import ZooKeeperClient

__all__ = [
    "leader_address",
    "leader_rest_url",
    "release_dead_sessions",
    "remove_cluster_metadata",
    "zookeeper_sessions_in_logs",
]

log = logging.getLogger("flinkops.runtimes.local")

_REST_COMPONENT = "rest_server"
_SESSION_LINE = re.compile(rb"Session establishment complete on server .*?session id = 0x([0-9a-fA-F]+)")
_STREAM_MAGIC = b"\xac\xed\x00\x05"
_TC_BLOCKDATA = 0x77
_TC_BLOCKDATALONG = 0x7A
_LOG_CHUNK_BYTES = 4 * 1024 * 1024


def leader_address(data: bytes) -> str | None:
    """The leader address in a Flink ``connection_info`` node: the Java-serialized UTF string it starts with."""
    if not data.startswith(_STREAM_MAGIC) or len(data) < 7:
        return None
    pos = len(_STREAM_MAGIC)
    marker = data[pos]
    if marker == _TC_BLOCKDATA:
        pos += 2  # marker, 1-byte block length
    elif marker == _TC_BLOCKDATALONG:
        pos += 5  # marker, 4-byte block length
    else:
        return None
    if pos + 2 > len(data):
        return None
    (length,) = struct.unpack(">H", data[pos : pos + 2])
    raw = data[pos + 2 : pos + 2 + length]
    if len(raw) != length:
        return None
    return raw.decode("utf-8", errors="replace") or None


def leader_rest_url(ha: ZooKeeperHA, timeout: float = 2.0) -> str | None:
    """The REST URL the current leader published, or None when no leader has published one."""
    with ZooKeeperClient(ha.quorum, timeout=timeout) as zk:
        found = zk.get(ha.connection_info_path(_REST_COMPONENT))
    if found is None:
        return None
    return leader_address(found[0])


def rest_port(url: str) -> int | None:
    try:
        return urllib.parse.urlsplit(url).port
    except ValueError:
        return None


def zookeeper_sessions_in_logs(log_dir: Path) -> list[int]:
    """Every ZooKeeper session id a process logged in ``log_dir`` (oldest first, as signed 64-bit ids).

    The newest session is the one the process held when it died; older ones (a process whose session expired
    and reconnected) are harmless to include: their nodes are gone already or belong to nobody alive.
    """
    found: list[int] = []
    try:
        files = sorted(p for p in log_dir.iterdir() if p.suffix in (".log", ".out"))
    except OSError:
        return found
    for path in files:
        # The session is logged right after start (near the head of a log that rolls over at start) and again
        # on any reconnect (near the tail): read both ends of a large file.
        try:
            with path.open("rb") as handle:
                size = handle.seek(0, 2)
                handle.seek(0)
                text = handle.read(_LOG_CHUNK_BYTES)
                if size > _LOG_CHUNK_BYTES:
                    handle.seek(max(_LOG_CHUNK_BYTES, size - _LOG_CHUNK_BYTES))
                    text += b"\n" + handle.read()
        except OSError:
            continue
        for match in _SESSION_LINE.finditer(text):
            value = int(match.group(1), 16)
            signed = value - (1 << 64) if value >= 1 << 63 else value
            if signed not in found:
                found.append(signed)
    return found


def release_dead_sessions(ha: ZooKeeperHA, sessions: Iterable[int], timeout: float = 3.0) -> list[str]:
    """Delete the ephemeral nodes below the cluster's path owned by ``sessions``; returns the deleted paths.

    The caller guarantees that every session belongs to a process that is dead.
    """
    owners = {s for s in sessions if s}
    if not owners:
        return []
    deleted: list[str] = []
    with ZooKeeperClient(ha.quorum, timeout=timeout) as zk:
        # The latch first: that is what the standby waits for. Then locks on job graphs and checkpoints, so
        # the new leader may clean up what the old one held.
        for root in (ha.latch_path, ha.path):
            for node in list(zk.walk(root)):
                if root == ha.path and (node == ha.latch_path or node.startswith(ha.latch_path + "/")):
                    continue  # done first
                stat = zk.exists(node)
                if stat is not None and stat.ephemeral_owner in owners and zk.delete(node):
                    deleted.append(node)
    return deleted


def remove_cluster_metadata(ha: ZooKeeperHA, timeout: float = 5.0) -> int:
    """Remove the cluster's znodes and its files in a local (``file:``) HA storage directory."""
    with ZooKeeperClient(ha.quorum, timeout=timeout) as zk:
        removed = zk.delete_tree(ha.path)
    storage = _local_storage(ha)
    if storage is not None and storage.is_dir():
        shutil.rmtree(storage, ignore_errors=True)
    return removed


def _local_storage(ha: ZooKeeperHA) -> Path | None:
    """``<storageDir>/<cluster-id>`` when the storage dir is a local path; Flink appends the cluster id."""
    if not ha.storage_dir:
        return None
    parsed = urllib.parse.urlsplit(ha.storage_dir)
    if parsed.scheme not in ("", "file") or parsed.netloc not in ("", "localhost"):
        return None
    base = Path(urllib.parse.unquote(parsed.path))
    if not base.is_absolute():
        return None
    cluster_id = ha.cluster_id.strip("/")
    return base / cluster_id if cluster_id else None
