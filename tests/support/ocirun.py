"""Run the command of an OCI image archive with ``runc``, with no container engine and no node: the archive's
layers unpacked into a root filesystem, a runtime bundle whose ``config.json`` starts from ``runc spec`` and takes
the image's user, environment, working directory, entrypoint and command, and the restrictions the Helm chart puts
on the operator's pod (read-only root filesystem with a tmpfs at /tmp, no capabilities, no privilege escalation).

Used by tests/integration/test_operator_image_run.py. Invariants: runc keeps its state in the bundle's own
directory (never the dev node's containerd state); each container gets new namespaces, its network namespace
holding only a loopback interface, so nothing it does can reach past this machine; a container is deleted (its
cgroups with it) before :meth:`Bundle.run` returns.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Bundle", "read_image", "unpack"]


def _blob(tar: tarfile.TarFile, digest: str) -> Any:
    member = tar.extractfile(f"blobs/sha256/{digest.split(':', 1)[1]}")
    assert member is not None, f"the archive has no blob {digest}"
    return json.load(member)


def read_image(archive: Path) -> tuple[dict[str, Any], list[str]]:
    """The image configuration and the layer digests (bottom first) of the archive's (first) image."""
    with tarfile.open(archive) as tar:
        index_file = tar.extractfile("index.json")
        assert index_file is not None
        index = json.load(index_file)
        manifest = _blob(tar, index["manifests"][0]["digest"])
        config = _blob(tar, manifest["config"]["digest"])
        return config, [layer["digest"] for layer in manifest["layers"]]


def unpack(archive: Path, rootfs: Path) -> dict[str, Any]:
    """Unpack the image's layers in order into ``rootfs`` (owners kept: needs root); returns its configuration.
    Layers go through GNU tar, as a container runtime's snapshotter would apply them (no whiteouts: the packer
    writes none)."""
    config, layers = read_image(archive)
    rootfs.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        for digest in layers:
            member = tar.extractfile(f"blobs/sha256/{digest.split(':', 1)[1]}")
            assert member is not None
            untar = subprocess.Popen(
                ["tar", "--numeric-owner", "-xpf", "-", "-C", str(rootfs)],
                stdin=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            assert untar.stdin is not None and untar.stderr is not None
            shutil.copyfileobj(member, untar.stdin, 1 << 20)
            untar.stdin.close()
            error = untar.stderr.read().decode(errors="replace")
            assert untar.wait(timeout=300) == 0, f"unpacking layer {digest} failed: {error}"
    return config


@dataclass
class Bundle:
    """A runtime bundle (``directory/rootfs`` and ``config.json``) for an unpacked image."""

    directory: Path
    image: dict[str, Any]  # the image configuration
    _runs: int = 0

    @property
    def rootfs(self) -> Path:
        return self.directory / "rootfs"

    def _spec(self, argv: list[str]) -> dict[str, Any]:
        spec_dir = self.directory / "spec"
        spec_dir.mkdir(exist_ok=True)
        (spec_dir / "config.json").unlink(missing_ok=True)
        subprocess.run(["runc", "spec", "--bundle", str(spec_dir)], check=True, capture_output=True, timeout=30)
        spec: dict[str, Any] = json.loads((spec_dir / "config.json").read_text())
        config = self.image.get("config", {})
        user, _, group = str(config.get("User", "0")).partition(":")
        assert user.isdigit() and (not group or group.isdigit()), f"the image's user is not numeric: {user}"
        spec["root"] = {"path": str(self.rootfs), "readonly": True}
        spec["hostname"] = "image-test"
        process = spec["process"]
        process.update(
            terminal=False,
            args=argv,
            env=list(config.get("Env", [])),
            cwd=config.get("WorkingDir") or "/",
            user={"uid": int(user), "gid": int(group or user)},
            noNewPrivileges=True,
            # The chart drops every capability.
            capabilities={kind: [] for kind in ("bounding", "effective", "inheritable", "permitted", "ambient")},
        )
        # The chart's emptyDir at /tmp, the only writable path.
        spec["mounts"].append(
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"]}
        )
        kinds = {n["type"] for n in spec["linux"]["namespaces"]}
        assert {"network", "pid", "mount"} <= kinds, kinds
        return spec

    def run(
        self, args: list[str] | None = None, *, entrypoint: list[str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run the image as a container runtime would: ``entrypoint`` (default the image's) followed by ``args``
        (default the image's command), as the image's user; output captured."""
        config = self.image.get("config", {})
        if entrypoint is None:
            entrypoint = list(config.get("Entrypoint") or [])
        if args is None:
            args = list(config.get("Cmd") or [])
        argv = [*entrypoint, *args]
        self._runs += 1
        name = f"flinkops-image-test-{os.getpid()}-{self._runs}"
        work = self.directory / name
        work.mkdir()
        (work / "config.json").write_text(json.dumps(self._spec(argv)))
        state = self.directory / "runc-state"
        try:
            return subprocess.run(
                ["runc", "--root", str(state), "run", "--bundle", str(work), name],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
        finally:
            subprocess.run(
                ["runc", "--root", str(state), "delete", "--force", name], capture_output=True, timeout=30, check=False
            )
            shutil.rmtree(work, ignore_errors=True)

    def leftovers(self) -> list[str]:
        """Containers runc still knows in this bundle's state directory (none once every run has returned)."""
        listed = subprocess.run(
            ["runc", "--root", str(self.directory / "runc-state"), "list", "--format", "json"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return [str(c["id"]) for c in json.loads(listed.stdout or "null") or []]
