"""The OCI image packer (flinkops.dev.node.oci) on small trees: layer contents (ownership, modes, symlinks, hard
links, directories kept empty, entries left out), blobs named by their digests, a manifest and configuration
that tie them together, and one index entry per image name, as ``ctr images import`` reads them. The real
import into containerd happens in tests/kubernetes/test_node_live.py (every pod there runs from these archives)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from flinkops.dev.node.oci import (
    LAYER_MEDIA_TYPE,
    LayerWriter,
    go_arch,
    image_config,
    read_archive_index,
    write_archive,
)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "tool").write_text("#!/bin/sh\necho hi\n")
    (root / "bin" / "tool").chmod(0o755)
    os.link(root / "bin" / "tool", root / "bin" / "same-tool")
    (root / "bin" / "link").symlink_to("tool")
    (root / "proc" / "self").mkdir(parents=True)
    (root / "var" / "log").mkdir(parents=True)
    (root / "var" / "log" / "noise.log").write_text("x")
    (root / "etc").mkdir()
    (root / "etc" / "secret").write_text("s")
    (root / "etc" / "secret").chmod(0o600)
    return root


def _members(path: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(path) as tar:
        return {member.name: member for member in tar.getmembers()}


def test_a_layer_keeps_links_modes_and_owners_and_leaves_out_what_it_is_told(tree: Path, tmp_path: Path) -> None:
    with LayerWriter(tmp_path / "layer.tar") as writer:
        writer.add_tree(tree, skip=lambda rel: rel.startswith("var/log/"), keep_empty=lambda rel: rel == "proc")
        writer.add_tree(tree / "bin", "opt/app", uid=9999, gid=9999)
        writer.add_bytes("entrypoint.sh", b"#!/bin/sh\n", mode=0o755)
        layer = writer.finish()
    data = layer.path.read_bytes()
    assert layer.digest == f"sha256:{hashlib.sha256(data).hexdigest()}" and layer.size == len(data)
    members = _members(layer.path)
    assert "proc" in members and "proc/self" not in members  # kept, empty
    assert "var/log" in members and "var/log/noise.log" not in members
    assert members["bin/link"].issym() and members["bin/link"].linkname == "tool"
    (stored,) = [members[n] for n in ("bin/tool", "bin/same-tool") if members[n].isreg()]  # stored once
    (linked,) = [members[n] for n in ("bin/tool", "bin/same-tool") if members[n].islnk()]  # a hard link to it
    assert stored.mode == 0o755 and linked.linkname == stored.name
    assert members["etc/secret"].mode == 0o600
    assert (members["opt/app/tool"].uid, members["opt/app/tool"].gid) == (9999, 9999)
    assert members["entrypoint.sh"].mode == 0o755
    names = list(members)
    assert names.index("bin") < names.index("bin/tool") and names.index("opt/app") < names.index("opt/app/tool")


def test_an_unfinished_layer_leaves_no_file(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), LayerWriter(tmp_path / "layer.tar") as writer:
        writer.add_bytes("a", b"1")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_an_archive_ties_index_manifest_config_and_layers_by_digest(tree: Path, tmp_path: Path) -> None:
    with LayerWriter(tmp_path / "base.tar") as writer:
        writer.add_tree(tree)
        base = writer.finish()
    with LayerWriter(tmp_path / "top.tar") as writer:
        writer.add_bytes("hello", b"world")
        top = writer.finish()
    config = image_config(
        [base, top],
        entrypoint=["/entrypoint.sh"],
        cmd=["help"],
        env={"A": "1"},
        working_dir="/opt",
        exposed_ports=["8081/tcp"],
    )
    names = ["docker.io/library/demo:1.0", "docker.io/library/demo:1"]
    archive = tmp_path / "image.oci.tar"
    digest = write_archive(archive, [base, top], config, names)

    with tarfile.open(archive) as tar:
        blobs = {}
        for member in tar.getmembers():
            if member.isfile() and member.name.startswith("blobs/sha256/"):
                handle = tar.extractfile(member)
                assert handle is not None
                blobs[member.name.rsplit("/", 1)[1]] = handle.read()
        layout = json.load(io.BytesIO(tar.extractfile("oci-layout").read()))  # type: ignore[union-attr]
    assert layout == {"imageLayoutVersion": "1.0.0"}
    for name, body in blobs.items():
        assert hashlib.sha256(body).hexdigest() == name  # every blob is named by its digest
    index = read_archive_index(archive)
    assert [m["annotations"]["io.containerd.image.name"] for m in index["manifests"]] == names
    assert {m["digest"] for m in index["manifests"]} == {digest}
    assert all(m["platform"] == {"architecture": go_arch(), "os": "linux"} for m in index["manifests"])
    manifest = json.loads(blobs[digest.split(":")[1]])
    assert [layer["digest"] for layer in manifest["layers"]] == [base.digest, top.digest]
    assert {layer["mediaType"] for layer in manifest["layers"]} == {LAYER_MEDIA_TYPE}
    stored_config = json.loads(blobs[manifest["config"]["digest"].split(":")[1]])
    assert stored_config["rootfs"] == {"type": "layers", "diff_ids": [base.digest, top.digest]}
    assert stored_config["config"]["Entrypoint"] == ["/entrypoint.sh"] and stored_config["config"]["Cmd"] == ["help"]
    assert stored_config["config"]["Env"] == ["A=1"] and stored_config["config"]["ExposedPorts"] == {"8081/tcp": {}}
    assert blobs[base.digest.split(":")[1]] == base.path.read_bytes()


def test_an_archive_needs_a_name(tmp_path: Path) -> None:
    with LayerWriter(tmp_path / "l.tar") as writer:
        layer = writer.finish()
    with pytest.raises(ValueError):
        write_archive(tmp_path / "x.tar", [layer], image_config([layer]), [])
