"""The images the dev node runs, built on this machine with no registry and no container daemon, and cached.

**The Flink image** (``deploy/docker/flink.Dockerfile`` is the same recipe for Docker users) has three layers:

1. *base*: a Debian bookworm ``minbase`` root filesystem made by ``debootstrap`` with the JRE and the tools
   the entrypoint and Flink's scripts use (:data:`BASE_PACKAGES`), and the user ``flink`` (uid/gid 9999, as in
   the official image). The Debian mirror is read from this machine's apt configuration when it runs, never
   written down here. Cached as ``cache_dir()/images/base-<key>.tar`` (key: suite, packages, architecture,
   recipe version), so a change of Flink or of the jobs' jars does not run debootstrap again.
2. *flink*: the Flink distribution of the installed ``apache-flink`` wheel at ``/opt/flink`` (``bin``, ``conf``,
   ``lib``, ``opt``, ``plugins``, ``licenses``, owned by ``flink``) with the official image's bind-address edits
   to ``conf/config.yaml``, the S3 filesystem plugins in ``/opt/flink/opt`` (so ``ENABLE_BUILT_IN_PLUGINS``
   works), the given job jars in ``/opt/flink/usrlib``, and ``/docker-entrypoint.sh``.

3. *cds*: class-data sharing archives of a JobManager's and a TaskManager's classes at ``/opt/flink/cds``,
   recorded by running both in the image's root (:mod:`flinkops.dev.node.image_cds`); the entrypoint hands them
   to the JVM. Cached as ``cache_dir()/images/cds-<key>.tar`` (key: the base layer, Flink's jars).

The OCI archive (``cache_dir()/images/flink-<version>-<key>.oci.tar``, key over the layers and the names) is
named ``docker.io/library/flink:<major.minor>``, ``:<version>`` and ``:<version>-java17`` (the names specs and
examples use; the kubelet expands ``flink:2.2`` to the first). **The pause image** (``localhost/flinkops/
pause:<key>``) holds the pause program only.

The cache helpers (:func:`debian_layer`, :func:`layer_once`, :func:`pack_archive`, :func:`prune_builds`) are
shared with :mod:`flinkops.dev.node.operator_image`, the operator's image.

Called by: :mod:`flinkops.dev.node.node` (import into containerd), ``scripts/prefetch.py``, the tests.
Invariants: a cached file is complete (written to a temporary name and renamed); a cache key covers every
input that changes the bytes; nothing is fetched but Debian packages (by debootstrap) and Maven jars (the S3
plugins, by :mod:`flinkops.flink.jars`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from flinkops.api.plugins import S3_HADOOP, S3_PRESTO
from flinkops.artifacts import Progress, cache_dir, file_lock
from flinkops.artifacts.cache import run_tool, say, scratch, write_atomic
from flinkops.dev.node import image_cds
from flinkops.dev.node.binaries import pause_binary
from flinkops.dev.node.oci import Layer, LayerWriter, go_arch, image_config, write_archive
from flinkops.errors import RuntimeFailure
from flinkops.flink.distribution import find_distribution
from flinkops.flink.jars import plugin_jar

__all__ = [
    "BASE_PACKAGES",
    "FLINK_GID",
    "FLINK_UID",
    "SUITE",
    "BuiltImage",
    "cache_key",
    "debian_layer",
    "debian_mirror",
    "entrypoint_script",
    "example_jars",
    "file_digest",
    "flink_image",
    "flink_image_names",
    "images_dir",
    "layer_once",
    "pack_archive",
    "pause_image",
    "prune_builds",
]

SUITE = "bookworm"
BASE_PACKAGES = ("openjdk-17-jre-headless", "gettext-base", "libjemalloc2", "libsnappy1v5", "procps")
FLINK_UID = FLINK_GID = 9999
_RECIPE = "3"  # bump when the way a layer is made changes, so cached layers are rebuilt
_FLINK_DIRS = ("bin", "conf", "lib", "opt", "plugins", "licenses")
# The official image's edits: servers listen on every interface of the pod, and no TaskManager host is fixed.
_BIND_EVERYWHERE = ("rest.address", "rest.bind-address", "jobmanager.bind-host", "taskmanager.bind-host")
_EXCLUDED_CONTENTS = ("dev", "proc", "sys", "run", "tmp", "var/cache/apt/archives", "var/lib/apt/lists")


@dataclass(frozen=True)
class BuiltImage:
    """An OCI archive and the names and manifest digest of the image in it."""

    archive: Path
    names: tuple[str, ...]
    digest: str


def images_dir() -> Path:
    return cache_dir() / "images"


def cache_key(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def file_digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            sha.update(chunk)
    return sha.hexdigest()


def _cached_layer(path: Path) -> Layer | None:
    meta = path.with_suffix(".json")
    try:
        data = json.loads(meta.read_text())
        if path.stat().st_size == data["size"]:
            return Layer(path, str(data["digest"]), int(data["size"]))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def layer_once(path: Path, build: Callable[[], Layer]) -> Layer:
    """The layer cached at ``path``, else the one ``build`` writes there (under the layer's lock, looked up again
    once it is held: another process may have built it meanwhile), remembered for next time."""
    cached = _cached_layer(path)
    if cached is not None:
        return cached
    with file_lock(path.with_suffix(".lock")):
        cached = _cached_layer(path)
        if cached is not None:
            return cached
        layer = build()
        write_atomic(path.with_suffix(".json"), json.dumps({"digest": layer.digest, "size": layer.size}))
        return layer


# ------------------------------------------------------------------------------------------------ Debian


def debian_mirror(sources: Path = Path("/etc/apt")) -> str:
    """The URI of this machine's apt source for Debian ``bookworm`` main (deb822 ``*.sources`` or one-line
    ``sources.list`` entries); RuntimeFailure when there is none."""
    candidates: list[Path] = []
    if (sources / "sources.list").is_file():
        candidates.append(sources / "sources.list")
    listed = sources / "sources.list.d"
    if listed.is_dir():
        candidates += sorted(p for p in listed.iterdir() if p.suffix in (".list", ".sources"))
    for path in candidates:
        text = path.read_text(errors="replace")
        if path.suffix == ".sources":
            for stanza in re.split(r"\n\s*\n", text):
                fields: dict[str, str] = {}
                for line in stanza.splitlines():
                    if line.startswith("#") or ":" not in line or line[:1].isspace():
                        continue
                    key, value = line.split(":", 1)
                    fields[key.strip().lower()] = value.strip()
                if fields.get("enabled", "yes").lower() == "no":
                    continue
                wanted = (
                    "deb" in fields.get("types", "").split()
                    and SUITE in fields.get("suites", "").split()
                    and "main" in fields.get("components", "").split()
                )
                if wanted and fields.get("uris"):
                    return fields["uris"].split()[0]
        else:
            for line in text.splitlines():
                words = re.sub(r"\[[^\]]*\]", " ", line.split("#", 1)[0]).split()
                if len(words) >= 4 and words[0] == "deb" and words[2] == SUITE and "main" in words[3:]:
                    return words[1]
    raise RuntimeFailure(
        f"no apt source for Debian {SUITE} main found in {sources} (sources.list or sources.list.d): the Flink "
        "image's root filesystem is made by debootstrap from the same mirror apt uses; configure one"
    )


def _apt_proxy_env() -> dict[str, str]:
    """http(s)_proxy from apt's configuration, when it has one, for debootstrap's downloads."""
    env: dict[str, str] = {}
    for scheme in ("http", "https"):
        try:
            out = subprocess.run(
                ["apt-config", "shell", "PROXY", f"Acquire::{scheme}::Proxy"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            ).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        match = re.search(r"PROXY='([^']+)'", out)
        if match and match.group(1).upper() not in ("DIRECT", "FALSE"):
            env[f"{scheme}_proxy"] = match.group(1)
    return env


def debian_layer(
    path: Path,
    packages: tuple[str, ...],
    commands: tuple[tuple[str, ...], ...],
    what: str,
    progress: Progress | None,
    skip: Callable[[str], bool] = lambda _relative: False,
) -> Layer:
    """The layer cached at ``path``, else one made there: a Debian :data:`SUITE` ``minbase`` root filesystem by
    ``debootstrap`` with ``packages``, then each of ``commands`` run in it by ``chroot`` (adding users, say).
    ``skip(relative path)`` leaves files out of the layer besides logs, the host's name and resolver, and the
    contents of the pseudo and cache directories. The caller's ``path`` must name every input (a cache key)."""

    def build() -> Layer:
        arch = go_arch()
        mirror = debian_mirror()
        say(progress, f"making {what}'s Debian {SUITE} root filesystem with debootstrap (once, minutes)")
        started = time.monotonic()
        with scratch(images_dir()) as tmp:
            rootfs = tmp / "rootfs"
            argv = [
                "debootstrap",
                "--variant=minbase",
                f"--arch={arch}",
                f"--include={','.join(packages)}",
                SUITE,
                str(rootfs),
                mirror,
            ]
            ok, tail = run_tool(
                argv,
                cwd=tmp,
                env={**os.environ, **_apt_proxy_env(), "DEBIAN_FRONTEND": "noninteractive"},
                log_name=f"debootstrap-{path.stem}",
                what="making the Debian root filesystem",
                progress=progress,
                missing_hint="the Debian package debootstrap must be installed (apt-get install debootstrap)",
            )
            if not ok:
                raise RuntimeFailure(f"debootstrap failed:\n{tail}")
            for command in commands:
                done = subprocess.run(["chroot", str(rootfs), *command], capture_output=True, text=True, check=False)
                if done.returncode != 0:
                    raise RuntimeFailure(f"`{' '.join(command)}` in the image failed: {done.stderr.strip()}")
            say(progress, f"writing {what}'s base layer")
            with LayerWriter(path) as writer:
                writer.add_tree(
                    rootfs,
                    skip=lambda rel: (
                        rel.startswith("var/log/") or rel in ("etc/hostname", "etc/resolv.conf") or skip(rel)
                    ),
                    keep_empty=lambda rel: rel in _EXCLUDED_CONTENTS,
                )
                layer = writer.finish()
        say(progress, f"base layer ready in {time.monotonic() - started:.0f}s ({layer.size >> 20} MiB)")
        return layer

    return layer_once(path, build)


def _base_layer(progress: Progress | None) -> Layer:
    path = images_dir() / f"base-{cache_key(SUITE, BASE_PACKAGES, go_arch(), _RECIPE, FLINK_UID)}.tar"
    users = (
        ("groupadd", "--system", "--gid", str(FLINK_GID), "flink"),
        ("useradd", "--system", "--no-create-home", "--home-dir", "/opt/flink", "--uid", str(FLINK_UID),
         "--gid", str(FLINK_GID), "--shell", "/bin/bash", "flink"),
    )  # fmt: skip
    return debian_layer(path, BASE_PACKAGES, users, "the Flink image", progress)


# ------------------------------------------------------------------------------------------------ Flink


def entrypoint_script() -> bytes:
    """The image's ``/docker-entrypoint.sh`` (shipped with this package)."""
    return resources.files("flinkops.dev.node").joinpath("docker-entrypoint.sh").read_bytes()


def flink_config_yaml(original: str) -> str:
    """The distribution's ``conf/config.yaml`` with the official image's edits: the REST server and the RPC
    endpoints bind every interface, and ``taskmanager.host`` is left to each TaskManager."""
    config = yaml.safe_load(original) or {}

    def put(path: str, value: object | None) -> None:
        parts = path.split(".")
        node = config
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                if value is None:
                    return
                node[part] = {}
            node = node[part]
        if value is None:
            node.pop(parts[-1], None)
        else:
            node[parts[-1]] = value

    for key in _BIND_EVERYWHERE:
        put(key, "0.0.0.0")
    put("taskmanager.host", None)
    return str(yaml.safe_dump(config, sort_keys=False, width=10_000))


def flink_image_names(version: str) -> tuple[str, ...]:
    major_minor = ".".join(version.split(".")[:2])
    return tuple(f"docker.io/library/flink:{tag}" for tag in (major_minor, version, f"{version}-java17"))


def _flink_layer(home: Path, version: str, opt_jars: Mapping[str, Path], usrlib: Mapping[str, Path]) -> Layer:
    entrypoint = entrypoint_script()
    inputs = {
        "version": version,
        "home": str(home),
        "lib": sorted((p.name, p.stat().st_size) for p in (home / "lib").iterdir()),
        "opt": {name: file_digest(path) for name, path in sorted(opt_jars.items())},
        "usrlib": {name: file_digest(path) for name, path in sorted(usrlib.items())},
        "entrypoint": hashlib.sha256(entrypoint).hexdigest(),
        "recipe": _RECIPE,
    }
    path = images_dir() / f"flink-{version}-{cache_key(inputs)}.tar"

    def build() -> Layer:
        owner: dict[str, Any] = {"uid": FLINK_UID, "gid": FLINK_GID}
        with LayerWriter(path) as writer:
            writer.add_dir("opt")
            writer.add_dir("opt/flink", **owner)
            for name in _FLINK_DIRS:
                if name == "conf":
                    writer.add_dir("opt/flink/conf", **owner)
                    for item in sorted((home / "conf").iterdir()):
                        if item.name == "config.yaml":
                            text = flink_config_yaml(item.read_text()).encode()
                            writer.add_bytes("opt/flink/conf/config.yaml", text, **owner)
                        elif item.is_file():
                            writer.add_file(f"opt/flink/conf/{item.name}", item, mode=0o644, **owner)
                elif (home / name).is_dir():
                    writer.add_tree(home / name, f"opt/flink/{name}", **owner)
            for name, jar in sorted(opt_jars.items()):
                writer.add_file(f"opt/flink/opt/{name}", jar, mode=0o644, **owner)
            writer.add_dir("opt/flink/usrlib", **owner)
            for name, jar in sorted(usrlib.items()):
                writer.add_file(f"opt/flink/usrlib/{name}", jar, mode=0o644, **owner)
            writer.add_dir("opt/flink/log", mode=0o775, **owner)
            writer.add_bytes("docker-entrypoint.sh", entrypoint, mode=0o755)
            return writer.finish()

    return layer_once(path, build)


def flink_image(usrlib: Mapping[str, Path] = {}, progress: Progress | None = None) -> BuiltImage:  # read only
    """The Flink image of the installed distribution with ``usrlib`` (file name in ``/opt/flink/usrlib`` -> jar)
    baked in; built once per set of inputs and cached (the first build runs debootstrap: minutes)."""
    for name in usrlib:
        if "/" in name or not name.endswith(".jar"):
            raise RuntimeFailure(f"bad jar name for the image's usrlib: {name!r}")
    distribution = find_distribution()
    version = distribution.version
    opt_jars = {
        path.name: path for path in (plugin_jar(S3_PRESTO, version, progress), plugin_jar(S3_HADOOP, version, progress))
    }
    base = _base_layer(progress)
    flink = _flink_layer(Path(distribution.home), version, opt_jars, usrlib)
    names = flink_image_names(version)
    arch = go_arch()
    java_home = f"/usr/lib/jvm/java-17-openjdk-{arch}"
    # The archives depend on the JRE and Flink's own jars, not on the jobs' jars in usrlib (not on the classpath).
    lib = sorted((p.name, p.stat().st_size) for p in (Path(distribution.home) / "lib").iterdir())
    cds_path = images_dir() / f"cds-{cache_key(base.digest, version, lib, _RECIPE, image_cds.RECIPE)}.tar"
    cds = layer_once(
        cds_path, lambda: image_cds.build_cds_layer(cds_path, [base, flink], java_home, FLINK_UID, progress)
    )
    config = image_config(
        [base, flink, cds],
        entrypoint=["/docker-entrypoint.sh"],
        cmd=["help"],
        env={
            "PATH": "/opt/flink/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "FLINK_HOME": "/opt/flink",
            "JAVA_HOME": java_home,
            "LANG": "C.UTF-8",
        },
        working_dir="/opt/flink",
        exposed_ports=["6123/tcp", "8081/tcp"],
        labels={"org.opencontainers.image.title": f"Flink {version} (flinkops dev image)"},
        architecture=arch,
    )
    key = cache_key(base.digest, flink.digest, cds.digest, names, config)
    archive = images_dir() / f"flink-{version}-{key}.oci.tar"
    built = pack_archive(archive, [base, flink, cds], config, names, progress, f"the Flink {version} image")
    prune_builds("flink-*.oci.tar", keep={archive})
    prune_builds("flink-*[0-9a-f].tar", keep={flink.path})
    prune_builds("cds-*.tar", keep={cds.path})
    return built


_KEEP_BUILDS = 3  # per kind: the images of the CLI and of the tests differ in their jars, and both stay warm


def prune_builds(pattern: str, keep: set[Path]) -> None:
    """Delete all but the newest builds matching ``pattern`` (with their side files); ``keep`` always stays."""
    found = sorted(images_dir().glob(pattern), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in found[_KEEP_BUILDS:]:
        if old in keep:
            continue
        for side in (old, old.with_suffix(".json"), Path(f"{old}.json"), old.with_suffix(".lock"), Path(f"{old}.lock")):
            side.unlink(missing_ok=True)


def example_jars(progress: Progress | None = None) -> dict[str, Path]:
    """The examples' jar and the Kafka connector they need (file name in ``/opt/flink/usrlib`` -> jar), when this
    is a source checkout with the examples; empty otherwise."""
    from flinkops.dev import example_jobs

    if not example_jobs.SOURCES_DIR.is_dir():
        return {}
    connector = example_jobs.kafka_connector_jar(progress)
    return {"flinkops-examples.jar": example_jobs.build_example_jobs(progress), connector.name: connector}


def pause_image(progress: Progress | None = None) -> BuiltImage:
    """The pods' sandbox image: the pause program alone."""
    binary = pause_binary(progress)
    key = cache_key(file_digest(binary), _RECIPE)
    names = (f"localhost/flinkops/pause:{key[:8]}",)
    layer_path = images_dir() / f"pause-{key}.tar"

    def build() -> Layer:
        with LayerWriter(layer_path) as writer:
            writer.add_file("pause", binary, mode=0o755)
            return writer.finish()

    layer = layer_once(layer_path, build)
    config = image_config([layer], entrypoint=["/pause"], user="65535:65535")
    return pack_archive(images_dir() / f"pause-{key}.oci.tar", [layer], config, names, progress, "the pause image")


def pack_archive(
    path: Path,
    layers: list[Layer],
    config: dict[str, object],
    names: tuple[str, ...],
    progress: Progress | None,
    what: str,
) -> BuiltImage:
    """The archive cached at ``path``, else one packed there (under its lock, looked up again once held)."""
    meta = path.with_name(path.name + ".json")

    def cached() -> BuiltImage | None:
        try:
            digest = json.loads(meta.read_text())["digest"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return BuiltImage(path, names, str(digest)) if path.exists() else None

    found = cached()
    if found is not None:
        return found
    with file_lock(path.with_name(path.name + ".lock")):
        found = cached()
        if found is not None:
            return found
        say(progress, f"packing {what} as an OCI archive")
        digest = write_archive(path, layers, config, names)
        write_atomic(meta, json.dumps({"digest": digest, "names": list(names)}))
    return BuiltImage(path, names, digest)
