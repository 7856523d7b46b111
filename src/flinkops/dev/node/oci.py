"""A small OCI image packer: layers written as tar files from directories and single files, and an OCI image
archive (``oci-layout``, ``index.json``, ``blobs/sha256/...``) that ``ctr images import`` reads, with one
manifest entry per image name. No registry and no daemon are involved.

Why our own: the images the dev node needs are a Debian root filesystem plus a few directories; writing their
tar layers and three JSON documents is a page of code on :mod:`tarfile` and :mod:`hashlib`, while Debian's
``umoci`` would need the root filesystem unpacked into its own layout first and then repacked (a second full
copy of ~1 GB), for the same result.

Layers are uncompressed tars (media type ``application/vnd.oci.image.layer.v1.tar``): the archive is imported on
this machine right after it is written, where gzip would only cost CPU. A layer's digest is its diff id.

Called by: :mod:`flinkops.dev.node.image`. Invariants: every blob is named by the sha256 of its bytes; a
finished layer or archive lands by rename, so a present file is complete; entries are written in sorted order
with their ownership given explicitly (``uid``/``gid``) or taken from the source.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import stat
import tarfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

__all__ = [
    "LAYER_MEDIA_TYPE",
    "Layer",
    "LayerWriter",
    "go_arch",
    "image_config",
    "read_archive_index",
    "write_archive",
]

LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar"
CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"
MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json"
_CHUNK = 1 << 20


def go_arch(machine: str | None = None) -> str:
    """The OCI (Go) name of this machine's architecture."""
    machine = machine or os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}.get(
        machine, machine
    )


@dataclass(frozen=True)
class Layer:
    """A finished layer file and its digest (``sha256:<hex>``) and size."""

    path: Path
    digest: str
    size: int


class _HashingWriter(io.RawIOBase):
    """A write-only file that hashes and counts what passes through to ``target``."""

    def __init__(self, target: IO[bytes]) -> None:
        self.target = target
        self.sha = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self.sha.update(view)
        self.target.write(view)
        self.size += len(view)
        return len(view)


@dataclass
class LayerWriter:
    """Build one layer: ``add_tree`` and ``add_file``/``add_bytes``/``add_dir``, then ``finish``.

    Used as a context manager; the layer file appears at ``path`` only when ``finish`` ran. Paths inside the
    layer are relative (``opt/flink/bin``), parents must be added before their children (``add_tree`` does).
    """

    path: Path
    _tmp: Path = field(init=False)
    _file: IO[bytes] = field(init=False)
    _hasher: _HashingWriter = field(init=False)
    _tar: tarfile.TarFile = field(init=False)
    _links: dict[tuple[int, int], str] = field(init=False, default_factory=dict)

    def __enter__(self) -> LayerWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        self._file = self._tmp.open("wb")
        self._hasher = _HashingWriter(self._file)
        self._tar = tarfile.open(fileobj=self._hasher, mode="w|", format=tarfile.PAX_FORMAT)
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._file.closed:  # not finished: end the stream into the temporary file, then drop it
            with contextlib.suppress(OSError, ValueError):
                self._tar.close()
            self._file.close()
        self._tmp.unlink(missing_ok=True)

    def finish(self) -> Layer:
        self._tar.close()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self._tmp, self.path)
        return Layer(self.path, f"sha256:{self._hasher.sha.hexdigest()}", self._hasher.size)

    # ------------------------------------------------------------------ entries

    def _info(self, name: str, kind: bytes, mode: int, uid: int, gid: int, mtime: float = 0) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name.strip("/"))
        info.type = kind
        info.mode = mode & 0o7777
        info.uid, info.gid = uid, gid
        info.uname = info.gname = ""
        info.mtime = int(mtime)
        return info

    def add_dir(self, name: str, *, mode: int = 0o755, uid: int = 0, gid: int = 0) -> None:
        self._tar.addfile(self._info(name, tarfile.DIRTYPE, mode, uid, gid))

    def add_bytes(self, name: str, data: bytes, *, mode: int = 0o644, uid: int = 0, gid: int = 0) -> None:
        info = self._info(name, tarfile.REGTYPE, mode, uid, gid)
        info.size = len(data)
        self._tar.addfile(info, io.BytesIO(data))

    def add_file(self, name: str, source: Path, *, mode: int | None = None, uid: int = 0, gid: int = 0) -> None:
        st = source.stat()
        info = self._info(name, tarfile.REGTYPE, st.st_mode if mode is None else mode, uid, gid, st.st_mtime)
        info.size = st.st_size
        with source.open("rb") as handle:
            self._tar.addfile(info, handle)

    def add_tree(
        self,
        source: Path,
        prefix: str = "",
        *,
        uid: int | None = None,
        gid: int | None = None,
        skip: Callable[[str], bool] = lambda _relative: False,
        keep_empty: Callable[[str], bool] = lambda _relative: False,
    ) -> None:
        """Add everything under ``source`` as ``prefix/<relative path>``, sorted, with symlinks, hard links and
        device nodes kept. ``uid``/``gid`` override the files' owners when given. ``skip(relative)`` leaves an
        entry (and all under it) out; ``keep_empty(relative)`` keeps a directory but none of its contents."""
        for relative, full in _walk(source, skip, keep_empty):
            name = f"{prefix.strip('/')}/{relative}".strip("/") if relative else prefix.strip("/")
            if not name:
                continue
            st = full.lstat()
            owner = st.st_uid if uid is None else uid
            group = st.st_gid if gid is None else gid
            mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISDIR(st.st_mode):
                self._tar.addfile(self._info(name, tarfile.DIRTYPE, mode, owner, group, st.st_mtime))
            elif stat.S_ISLNK(st.st_mode):
                info = self._info(name, tarfile.SYMTYPE, 0o777, owner, group, st.st_mtime)
                info.linkname = os.readlink(full)
                self._tar.addfile(info)
            elif stat.S_ISREG(st.st_mode):
                key = (st.st_dev, st.st_ino)
                if st.st_nlink > 1 and key in self._links:
                    info = self._info(name, tarfile.LNKTYPE, mode, owner, group, st.st_mtime)
                    info.linkname = self._links[key]
                    self._tar.addfile(info)
                    continue
                self._links[key] = name
                info = self._info(name, tarfile.REGTYPE, mode, owner, group, st.st_mtime)
                info.size = st.st_size
                with full.open("rb") as handle:
                    self._tar.addfile(info, handle)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                kind = tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else tarfile.BLKTYPE
                info = self._info(name, kind, mode, owner, group, st.st_mtime)
                info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
                self._tar.addfile(info)
            elif stat.S_ISFIFO(st.st_mode):
                self._tar.addfile(self._info(name, tarfile.FIFOTYPE, mode, owner, group, st.st_mtime))
            # sockets are not representable in a layer and are left out


def _walk(root: Path, skip: Callable[[str], bool], keep_empty: Callable[[str], bool]) -> Iterable[tuple[str, Path]]:
    """(relative path, full path) of ``root`` and everything under it, parents first, names sorted."""
    yield "", root
    stack = [("", root)]
    while stack:
        relative, directory = stack.pop()
        if relative and keep_empty(relative):
            continue
        entries = sorted(os.scandir(directory), key=lambda e: e.name, reverse=True)
        subdirs = []
        for entry in reversed(entries):
            child = f"{relative}/{entry.name}" if relative else entry.name
            if skip(child):
                continue
            yield child, Path(entry.path)
            if entry.is_dir(follow_symlinks=False):
                subdirs.append((child, Path(entry.path)))
        stack.extend(reversed(subdirs))


def image_config(
    layers: Sequence[Layer],
    *,
    entrypoint: Sequence[str] = (),
    cmd: Sequence[str] = (),
    env: Mapping[str, str] = {},  # read only
    working_dir: str = "",
    user: str = "",
    exposed_ports: Sequence[str] = (),
    labels: Mapping[str, str] = {},  # read only
    architecture: str | None = None,
) -> dict[str, Any]:
    """The image configuration document (``application/vnd.oci.image.config.v1+json``)."""
    config: dict[str, Any] = {"Env": [f"{k}={v}" for k, v in env.items()]}
    if entrypoint:
        config["Entrypoint"] = list(entrypoint)
    if cmd:
        config["Cmd"] = list(cmd)
    if working_dir:
        config["WorkingDir"] = working_dir
    if user:
        config["User"] = user
    if exposed_ports:
        config["ExposedPorts"] = {port: {} for port in exposed_ports}
    if labels:
        config["Labels"] = dict(labels)
    return {
        "architecture": architecture or go_arch(),
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [layer.digest for layer in layers]},
    }


def _json_blob(document: Mapping[str, Any]) -> tuple[bytes, str]:
    data = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    return data, f"sha256:{hashlib.sha256(data).hexdigest()}"


def write_archive(out: Path, layers: Sequence[Layer], config: Mapping[str, Any], names: Sequence[str]) -> str:
    """Write an OCI image archive (a tar of an OCI image layout) holding one image under every name in
    ``names`` (full references such as ``docker.io/library/flink:2.2``); returns the manifest digest."""
    if not names:
        raise ValueError("an image archive needs at least one name")
    config_data, config_digest = _json_blob(config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": config_digest, "size": len(config_data)},
        "layers": [{"mediaType": LAYER_MEDIA_TYPE, "digest": layer.digest, "size": layer.size} for layer in layers],
    }
    manifest_data, manifest_digest = _json_blob(manifest)
    platform = {"architecture": str(config.get("architecture", go_arch())), "os": str(config.get("os", "linux"))}
    index = {
        "schemaVersion": 2,
        "mediaType": INDEX_MEDIA_TYPE,
        "manifests": [
            {
                "mediaType": MANIFEST_MEDIA_TYPE,
                "digest": manifest_digest,
                "size": len(manifest_data),
                "platform": platform,
                "annotations": {
                    "io.containerd.image.name": name,
                    "org.opencontainers.image.ref.name": name.rsplit(":", 1)[-1] if ":" in name else "latest",
                },
            }
            for name in names
        ],
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:

            def add(name: str, data: bytes) -> None:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(data))

            def add_dir(name: str) -> None:
                info = tarfile.TarInfo(name)
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)

            add("oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
            add("index.json", json.dumps(index, sort_keys=True).encode())
            add_dir("blobs")
            add_dir("blobs/sha256")
            add(f"blobs/sha256/{config_digest.split(':', 1)[1]}", config_data)
            add(f"blobs/sha256/{manifest_digest.split(':', 1)[1]}", manifest_data)
            seen: set[str] = set()
            for layer in layers:
                if layer.digest in seen:
                    continue
                seen.add(layer.digest)
                info = tarfile.TarInfo(f"blobs/sha256/{layer.digest.split(':', 1)[1]}")
                info.size = layer.size
                info.mode = 0o644
                with layer.path.open("rb") as handle:
                    tar.addfile(info, handle)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return manifest_digest


def read_archive_index(archive: Path) -> dict[str, Any]:
    """The ``index.json`` of an OCI image archive."""
    with tarfile.open(archive) as tar:
        member = tar.extractfile("index.json")
        if member is None:
            raise ValueError(f"{archive} has no index.json")
        loaded: dict[str, Any] = json.load(member)
        return loaded
