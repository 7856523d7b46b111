"""The Flink image's class-data sharing layer: archives of the classes a JobManager and a TaskManager load as they
start, made once when the image is built, so every pod's JVM maps them instead of parsing Flink's jars.

Measured on this machine (2 cores, loaded): a session JobManager answered REST after 10.3 / 9.4 s without an
archive and 7.9 / 5.5 s with one. Every JobManager and TaskManager start in a pod pays that difference: a deploy,
each upgrade's new cluster, a JobManager redeployed without HA, a replaced TaskManager.

**How the archives are made.** Java 17 records a dynamic archive at exit (``-XX:ArchiveClassesAtExit``), so the
build unpacks the image's two layers (base and flink) into a scratch directory and runs, in that root with the
image's own JRE, a session JobManager and a TaskManager (``bin/jobmanager.sh``/``bin/taskmanager.sh
start-foreground``, the scripts the pods run, hence the same classpath), each recording to
``/opt/flink/cds/<component>.jsa``; once the TaskManager has registered, both are stopped with SIGTERM and write
their archives. They run in new mount, network, PID and UTS namespaces (``unshare``): only a loopback interface
exists (nothing can leave the machine, no name is looked up), ``/proc`` and ``/dev`` are mounted for the root
inside the private mount namespace, and everything ends with the namespace's first process. The archives
become a third layer (``cache_dir()/images/cds-<key>.tar``, keyed by both layers' digests), so they are remade
only when the JRE or Flink changes.

**How they are used.** The image's entrypoint adds ``-XX:SharedArchiveFile=<archive> -Xshare:auto`` (and quiet
CDS logging) to ``JAVA_TOOL_OPTIONS`` for the component it starts, unless ``FLINK_CDS=off``. ``-Xshare:auto``
means an archive the JVM cannot map (another JRE build, other options) costs the speed-up, never the start.

Called by: :func:`flinkops.dev.node.image.flink_image`. Invariant: the layer holds the archives only; the build
changes nothing on the host (its mounts live and die in its own mount namespace) and stops what it started.
"""

from __future__ import annotations

import os
import subprocess
import tarfile
import textwrap
import time
from pathlib import Path

from flinkops.artifacts import Progress
from flinkops.artifacts.cache import say, scratch
from flinkops.dev.node.oci import Layer, LayerWriter
from flinkops.errors import RuntimeFailure

__all__ = ["CDS_DIR", "COMPONENTS", "RECIPE", "build_cds_layer"]

RECIPE = "1"  # bump when the way the archives are recorded changes

#: Where the archives are in the image (the entrypoint reads them from here).
CDS_DIR = "opt/flink/cds"
#: The components that get an archive (``<name>.jsa``), each recorded by ``bin/<name>.sh``.
COMPONENTS = ("jobmanager", "taskmanager")
_TIMEOUT = 600  # seconds for the whole recording (two JVM starts and stops on a loaded 2-core machine)
_HOSTNAME = "flinkops-cds"

# Runs as the first process of the new namespaces (its arguments: the root filesystem, the JRE's home, the uid).
_RECORD = textwrap.dedent(
    """\
    set -eu
    root="$1"; java_home="$2"; uid="$3"
    ip link set lo up
    hostname {hostname}
    mount -t proc proc "$root/proc"
    mount --rbind /dev "$root/dev"
    printf '127.0.0.1 localhost {hostname}\\n' > "$root/etc/hosts"
    mkdir -p "$root/{cds_dir}" && chown "$uid:$uid" "$root/{cds_dir}"
    start() {{
        component="$1"; opts="$2"; shift 2
        # FLINK_ENV_JAVA_OPTS_JM/_TM: appended to Flink's default JVM options (the Java 17 module flags)
        exec chroot --userspec="$uid:$uid" "$root" /usr/bin/env -i HOME=/opt/flink PATH=/opt/flink/bin:/usr/bin:/bin \\
            FLINK_HOME=/opt/flink JAVA_HOME="$java_home" \\
            "$opts=-XX:ArchiveClassesAtExit=/{cds_dir}/$component.jsa" \\
            "/opt/flink/bin/$component.sh" start-foreground "$@"
    }}
    common="-D jobmanager.rpc.address=127.0.0.1 -D cluster.registration.error-delay=500ms"
    start jobmanager FLINK_ENV_JAVA_OPTS_JM $common -D jobmanager.bind-host=127.0.0.1 -D rest.bind-address=127.0.0.1 \\
        -D rest.address=127.0.0.1 -D jobmanager.memory.process.size=1g > "$root/jobmanager.out" 2>&1 &
    jm=$!
    start taskmanager FLINK_ENV_JAVA_OPTS_TM $common -D taskmanager.bind-host=127.0.0.1 -D taskmanager.host=127.0.0.1 \\
        -D taskmanager.memory.process.size=1g > "$root/taskmanager.out" 2>&1 &
    tm=$!
    registered=0
    for _ in $(seq 1 {tries}); do
        if grep -q "Successful registration at resource manager" "$root/taskmanager.out" 2>/dev/null; then
            registered=1; break
        fi
        kill -0 "$jm" 2>/dev/null && kill -0 "$tm" 2>/dev/null || break
        sleep 0.5
    done
    sleep 2  # the first heartbeats and slot reports load their classes too
    kill -TERM "$tm" "$jm" 2>/dev/null || true
    wait "$tm" || true
    wait "$jm" || true
    [ "$registered" = 1 ] || {{ echo "the TaskManager did not register" >&2; exit 1; }}
    """
)


def _unpack(layers: list[Layer], root: Path) -> None:
    for layer in layers:
        with tarfile.open(layer.path) as archive:
            archive.extractall(root, filter="fully_trusted")  # our own layers, written by LayerWriter


def build_cds_layer(path: Path, layers: list[Layer], java_home: str, uid: int, progress: Progress | None) -> Layer:
    """Record the archives in a root made of ``layers`` and write them as the layer at ``path`` (module
    docstring). RuntimeFailure, with the JVMs' output, when a component did not record one."""
    started = time.monotonic()
    say(progress, "recording class-data sharing archives of a JobManager and a TaskManager (once, about a minute)")
    with scratch(path.parent) as tmp:
        root = tmp / "rootfs"
        root.mkdir()
        _unpack(layers, root)
        script = _RECORD.format(hostname=_HOSTNAME, cds_dir=CDS_DIR, tries=int(_TIMEOUT / 0.5 * 0.8))
        argv = ["unshare", "--mount", "--net", "--pid", "--uts", "--fork", "--kill-child", "/bin/sh", "-c", script]
        try:
            done = subprocess.run(
                [*argv, "record-cds", str(root), java_home, str(uid)],
                capture_output=True,
                text=True,
                timeout=_TIMEOUT,
                check=False,
                env={"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")},
            )
        except subprocess.TimeoutExpired as exc:
            raise RuntimeFailure(f"recording the class-data sharing archives took over {_TIMEOUT}s") from exc
        archives = {name: root / CDS_DIR / f"{name}.jsa" for name in COMPONENTS}
        missing = [name for name, archive in archives.items() if not archive.is_file()]
        if done.returncode != 0 or missing:
            outputs = "\n".join(f"--- {name}:\n" + _tail(root / f"{name}.out") for name in COMPONENTS)
            raise RuntimeFailure(
                f"recording the class-data sharing archives failed (exit {done.returncode}, missing: "
                f"{', '.join(missing) or 'none'}): {done.stderr.strip()[-2000:]}\n{outputs}"
            )
        with LayerWriter(path) as writer:
            writer.add_dir("opt")
            writer.add_dir("opt/flink", uid=uid, gid=uid)
            writer.add_dir(CDS_DIR, uid=uid, gid=uid)
            for name, archive in sorted(archives.items()):
                writer.add_file(f"{CDS_DIR}/{name}.jsa", archive, mode=0o444, uid=uid, gid=uid)
            layer = writer.finish()
    say(progress, f"class-data sharing archives ready in {time.monotonic() - started:.0f}s ({layer.size >> 20} MiB)")
    return layer


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no output)"
