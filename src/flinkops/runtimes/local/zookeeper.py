"""A small, synchronous ZooKeeper client: just enough of the wire protocol for flinkops' own needs.

flinkops reads and tidies Flink's high-availability metadata (which JobManager leads, whose leader latch a dead
process still holds, what a deleted cluster left behind); it never takes part in an election itself. So this
client speaks the plain request/response part of the protocol (connect, exists, get data, get children,
create, delete, close) on one TCP connection, with no watches, no reconnects and no background thread: open
it, do a few reads or deletes, close it. A session lives for one ``with`` block.

Every network or protocol failure becomes ``ZooKeeperError`` (``ZooKeeperUnavailable`` when no server of the
connect string answered); a missing node is ``None`` or an empty list, not an error.

Called by: the local runtime's HA helpers (``flinkops.runtimes.local.ha``) and tests.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType

from flinkops.errors import TemporaryError

__all__ = [
    "NODE_EXISTS",
    "NOT_EMPTY",
    "Stat",
    "ZooKeeperClient",
    "ZooKeeperError",
    "ZooKeeperUnavailable",
    "parse_connect_string",
]

# Operation codes and error codes of the ZooKeeper protocol (zookeeper.jute / ZooDefs.OpCode, KeeperException).
_OP_CREATE = 1
_OP_DELETE = 2
_OP_EXISTS = 3
_OP_GET_DATA = 4
_OP_GET_CHILDREN = 8
_OP_CLOSE_SESSION = -11
_ERR_OK = 0
_ERR_NO_NODE = -101
_ERR_NOT_EMPTY = NOT_EMPTY = -111
_ERR_NODE_EXISTS = NODE_EXISTS = -110
_PERMS_ALL = 31  # read, write, create, delete, admin
_FLAG_EPHEMERAL = 1
_FLAG_SEQUENTIAL = 2
_WATCHER_EVENT_XID = -1
_PING_XID = -2

_INT = struct.Struct(">i")
_LONG = struct.Struct(">q")
_REPLY_HEADER = struct.Struct(">iqi")  # xid, zxid, err
_STAT = struct.Struct(">qqqqiiiqiiq")
_MAX_FRAME = 64 * 1024 * 1024


class ZooKeeperError(TemporaryError):
    """A ZooKeeper request failed (connection lost, protocol error, unexpected server error).

    ``code`` is the server's error code when the server answered with one (e.g. -111 for "not empty").
    """

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class ZooKeeperUnavailable(ZooKeeperError):
    """No server of the connect string accepted a session."""


@dataclass(frozen=True)
class Stat:
    """The metadata of one znode; ``ephemeral_owner`` is the owning session id, 0 for persistent nodes."""

    czxid: int
    mzxid: int
    ctime: int
    mtime: int
    version: int
    cversion: int
    aversion: int
    ephemeral_owner: int
    data_length: int
    num_children: int
    pzxid: int


def parse_connect_string(connect: str) -> tuple[list[tuple[str, int]], str]:
    """``host:port,host2:port2/chroot`` → ([(host, port), ...], "/chroot" or ""). The port defaults to 2181."""
    text = connect.strip()
    chroot = ""
    if "/" in text:
        text, chroot = text.split("/", 1)
        chroot = "/" + chroot.strip("/") if chroot.strip("/") else ""
    hosts: list[tuple[str, int]] = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        host, _, port = item.rpartition(":") if ":" in item else (item, "", "2181")
        try:
            hosts.append((host.strip("[]") or "127.0.0.1", int(port)))
        except ValueError as exc:
            raise ZooKeeperError(f"bad ZooKeeper address '{item}' in '{connect}'") from exc
    if not hosts:
        raise ZooKeeperError(f"no ZooKeeper server in connect string '{connect}'")
    return hosts, chroot


class _Writer:
    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def i32(self, value: int) -> _Writer:
        self.parts.append(_INT.pack(value))
        return self

    def i64(self, value: int) -> _Writer:
        self.parts.append(_LONG.pack(value))
        return self

    def flag(self, value: bool) -> _Writer:
        self.parts.append(b"\x01" if value else b"\x00")
        return self

    def buffer(self, value: bytes | None) -> _Writer:
        if value is None:
            return self.i32(-1)
        self.i32(len(value))
        self.parts.append(value)
        return self

    def string(self, value: str) -> _Writer:
        return self.buffer(value.encode("utf-8"))

    def frame(self) -> bytes:
        body = b"".join(self.parts)
        return _INT.pack(len(body)) + body


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def _take(self, size: int) -> bytes:
        if self.pos + size > len(self.data):
            raise ZooKeeperError("truncated ZooKeeper response")
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return chunk

    def i32(self) -> int:
        value: int = _INT.unpack(self._take(4))[0]
        return value

    def i64(self) -> int:
        value: int = _LONG.unpack(self._take(8))[0]
        return value

    def buffer(self) -> bytes | None:
        size = self.i32()
        return None if size < 0 else self._take(size)

    def string(self) -> str:
        raw = self.buffer()
        return "" if raw is None else raw.decode("utf-8", errors="replace")

    def stat(self) -> Stat:
        return Stat(*_STAT.unpack(self._take(_STAT.size)))


class ZooKeeperClient:
    """One short ZooKeeper session. Use as a context manager; every call blocks for at most ``timeout``."""

    def __init__(self, connect: str, *, timeout: float = 5.0, session_timeout_ms: int = 10_000) -> None:
        self.connect_string = connect
        self.hosts, self.chroot = parse_connect_string(connect)
        self.timeout = timeout
        self.session_timeout_ms = session_timeout_ms
        self.session_id: int | None = None
        self._sock: socket.socket | None = None
        self._xid = 0

    # ------------------------------------------------------------------ session

    def __enter__(self) -> ZooKeeperClient:
        self.open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def open(self) -> None:
        if self._sock is not None:
            return
        errors: list[str] = []
        for host, port in self.hosts:
            try:
                self._handshake(host, port)
                return
            except (OSError, ZooKeeperError) as exc:
                self._drop()
                errors.append(f"{host}:{port}: {exc}")
        raise ZooKeeperUnavailable(f"no ZooKeeper server answered at {self.connect_string} ({'; '.join(errors)})")

    def _handshake(self, host: str, port: int) -> None:
        sock = socket.create_connection((host, port), timeout=self.timeout)
        self._sock = sock
        request = (
            _Writer()
            .i32(0)  # protocol version
            .i64(0)  # last zxid seen
            .i32(self.session_timeout_ms)
            .i64(0)  # session id: 0 asks for a new session
            .buffer(bytes(16))  # session password
            .flag(False)  # read-only
        )
        sock.sendall(request.frame())
        reply = _Reader(self._read_frame())
        reply.i32()  # protocol version
        negotiated = reply.i32()
        session_id = reply.i64()
        if negotiated <= 0:
            raise ZooKeeperError("the server refused the session")
        self.session_id = session_id

    def close(self) -> None:
        """End the session at once (its ephemeral nodes go with it), then drop the connection."""
        if self._sock is None:
            return
        try:
            self._call(_OP_CLOSE_SESSION, _Writer())
        except (OSError, ZooKeeperError):
            pass  # the server expires the session on its own
        finally:
            self._drop()

    def _drop(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None

    # ------------------------------------------------------------------ requests

    def exists(self, path: str) -> Stat | None:
        err, body = self._call(_OP_EXISTS, _Writer().string(self._full(path)).flag(False))
        if err == _ERR_NO_NODE:
            return None
        self._check(err, "exists", path)
        return body.stat()

    def get(self, path: str) -> tuple[bytes, Stat] | None:
        """The data and stat of ``path``, or None when it does not exist."""
        err, body = self._call(_OP_GET_DATA, _Writer().string(self._full(path)).flag(False))
        if err == _ERR_NO_NODE:
            return None
        self._check(err, "get", path)
        data = body.buffer()
        return (data or b""), body.stat()

    def children(self, path: str) -> list[str]:
        """The child names of ``path`` (sorted), or [] when it does not exist."""
        err, body = self._call(_OP_GET_CHILDREN, _Writer().string(self._full(path)).flag(False))
        if err == _ERR_NO_NODE:
            return []
        self._check(err, "children", path)
        return sorted(body.string() for _ in range(max(0, body.i32())))

    def create(
        self, path: str, data: bytes = b"", *, ephemeral: bool = False, sequential: bool = False, parents: bool = False
    ) -> str:
        """Create ``path`` (open ACL) and return the created path (with the sequence suffix if ``sequential``).

        ``parents`` creates missing persistent ancestors first. An existing node raises ``ZooKeeperError``
        with ``code == NODE_EXISTS``.
        """
        if parents:
            parts = path.strip("/").split("/")[:-1]
            for depth in range(1, len(parts) + 1):
                ancestor = "/" + "/".join(parts[:depth])
                err, _ = self._call(_OP_CREATE, self._create_request(ancestor, b"", 0))
                if err not in (_ERR_OK, _ERR_NODE_EXISTS):
                    self._check(err, "create", ancestor)
        flags = (_FLAG_EPHEMERAL if ephemeral else 0) | (_FLAG_SEQUENTIAL if sequential else 0)
        err, body = self._call(_OP_CREATE, self._create_request(path, data, flags))
        self._check(err, "create", path)
        created = body.string()
        return created[len(self.chroot) :] if self.chroot and created.startswith(self.chroot) else created

    def _create_request(self, path: str, data: bytes, flags: int) -> _Writer:
        request = _Writer().string(self._full(path)).buffer(data)
        request.i32(1).i32(_PERMS_ALL).string("world").string("anyone")  # one ACL: world:anyone, all
        return request.i32(flags)

    def delete(self, path: str, version: int = -1) -> bool:
        """Delete one node without children; False when it was already gone."""
        err, _ = self._call(_OP_DELETE, _Writer().string(self._full(path)).i32(version))
        if err == _ERR_NO_NODE:
            return False
        self._check(err, "delete", path)
        return True

    def walk(self, path: str) -> Iterator[str]:
        """``path`` and every node below it, parents before children (a snapshot; nodes may change under it)."""
        if self.exists(path) is None:
            return
        pending = [path]
        while pending:
            current = pending.pop()
            yield current
            base = current.rstrip("/")
            pending.extend(f"{base}/{child}" for child in reversed(self.children(current)))

    def delete_tree(self, path: str, attempts: int = 5) -> int:
        """Delete ``path`` and everything below it; returns how many nodes this call removed.

        Other clients may add nodes meanwhile (a process that is still shutting down): retried a few times.
        """
        removed = 0
        for _ in range(attempts):
            nodes = list(self.walk(path))
            if not nodes:
                return removed
            try:
                for node in reversed(nodes):  # children before parents
                    removed += self.delete(node)
            except ZooKeeperError as exc:
                if exc.code != _ERR_NOT_EMPTY:
                    raise
                continue
            if self.exists(path) is None:
                return removed
        raise ZooKeeperError(f"could not delete {path}: nodes kept appearing below it")

    # ------------------------------------------------------------------ wire

    def _full(self, path: str) -> str:
        if not path.startswith("/"):
            raise ZooKeeperError(f"ZooKeeper paths are absolute, got '{path}'")
        full = self.chroot + path if self.chroot else path
        return full.rstrip("/") or "/"

    def _check(self, err: int, what: str, path: str) -> None:
        if err != _ERR_OK:
            raise ZooKeeperError(f"ZooKeeper {what} {path} failed with error code {err}", code=err)

    def _call(self, op: int, body: _Writer) -> tuple[int, _Reader]:
        if self._sock is None:
            self.open()
        assert self._sock is not None
        self._xid += 1
        xid = self._xid
        payload = _Writer().i32(xid).i32(op)
        payload.parts.extend(body.parts)
        try:
            self._sock.sendall(payload.frame())
            deadline = time.monotonic() + self.timeout
            while True:
                reader = _Reader(self._read_frame(deadline))
                reply_xid, _zxid, err = _REPLY_HEADER.unpack(reader._take(_REPLY_HEADER.size))
                if reply_xid in (_WATCHER_EVENT_XID, _PING_XID):
                    continue  # no watches are set, but never trip over a stray notification
                if reply_xid != xid:
                    raise ZooKeeperError(f"out-of-order ZooKeeper reply (xid {reply_xid}, expected {xid})")
                return err, reader
        except ZooKeeperError:
            self._drop()  # the stream may be mid-frame: never reuse it
            raise
        except OSError as exc:
            self._drop()
            raise ZooKeeperError(f"ZooKeeper connection to {self.connect_string} failed: {exc}") from exc

    def _read_frame(self, deadline: float | None = None) -> bytes:
        header = self._read_exact(4, deadline)
        size: int = _INT.unpack(header)[0]
        if size < 0 or size > _MAX_FRAME:
            raise ZooKeeperError(f"implausible ZooKeeper frame of {size} bytes")
        return self._read_exact(size, deadline)

    def _read_exact(self, size: int, deadline: float | None) -> bytes:
        assert self._sock is not None
        chunks: list[bytes] = []
        remaining = size
        while remaining:
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ZooKeeperError(f"ZooKeeper at {self.connect_string} did not answer in {self.timeout:.1f}s")
                self._sock.settimeout(left)
            try:
                chunk = self._sock.recv(remaining)
            except TimeoutError as exc:
                raise ZooKeeperError(
                    f"ZooKeeper at {self.connect_string} did not answer in {self.timeout:.1f}s"
                ) from exc
            if not chunk:
                raise ZooKeeperError(f"ZooKeeper at {self.connect_string} closed the connection")
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)
