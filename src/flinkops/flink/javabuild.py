"""Compile a directory of Java sources with ``javac`` into a jar named after the digest of its inputs.

No Maven project: the sources are compiled against a given classpath (jars of the Flink distribution, a
connector...) into a temporary directory and packed into a jar, which reaches its final path by a rename.

Invariants:

* The jar at a path built from :func:`sources_digest` is always complete: it is written to a temporary file in
  the target's directory and renamed into place, so a reader or a concurrent builder never sees a torn file and
  a present jar can be reused as is.
* The digest covers every source's relative path and bytes, plus ``identity`` (whatever else shapes the classes:
  library versions, the Java release), so any change to them names another jar.

The compiler is ``javac`` (``$JAVA_HOME/bin``, else the ``PATH``), or, where only a Java runtime is installed,
that runtime's own compiler module (``java -m jdk.compiler/com.sun.tools.javac.Main``: Debian's and Temurin's
runtimes carry it).

Called by: :mod:`flinkops.dev.example_jobs` (the example jobs), ``tests/support/testjobs.py`` (the test jobs) and
:mod:`flinkops.flink.loopback` (the local runtime's Prometheus reporter on 127.0.0.1).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

from flinkops.errors import PermanentError

__all__ = [
    "JAVA_RELEASE",
    "JavaBuildError",
    "build_jar",
    "source_files",
    "sources_digest",
    "write_atomically",
]

JAVA_RELEASE = "11"  # the oldest Java that Flink 2.x runs on; the distribution and the connectors target it too


class JavaBuildError(PermanentError):
    """javac is missing or the sources did not compile."""


def source_files(sources_dir: Path) -> list[Path]:
    """Every ``.java`` file under ``sources_dir``, sorted."""
    return sorted(sources_dir.rglob("*.java"))


def sources_digest(sources_dir: Path, identity: str = "") -> str:
    """The first 12 hex digits of the sha256 over ``identity`` (when given) and every source's relative path
    and content."""
    digest = hashlib.sha256()
    if identity:
        digest.update(identity.encode())
        digest.update(b"\0")
    for source in source_files(sources_dir):
        digest.update(source.relative_to(sources_dir).as_posix().encode())
        digest.update(b"\0")
        digest.update(source.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:12]


def write_atomically(target: Path, write: Callable[[Path], object]) -> None:
    """Create ``target`` (mode 0644) by ``write`` into a temporary file in its directory and a rename; the
    temporary file is removed when ``write`` fails."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    os.close(fd)
    try:
        write(Path(partial))
        os.chmod(partial, 0o644)
        os.replace(partial, target)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


def build_jar(
    sources_dir: Path,
    classpath: Sequence[Path],
    target: Path,
    *,
    created_by: str,
    error: Callable[[str], Exception] = JavaBuildError,
    release: str = JAVA_RELEASE,
    java: str | None = None,
) -> Path:
    """Compile every source under ``sources_dir`` against ``classpath`` for Java ``release`` and write the
        classes as the jar ``target`` (atomically, replacing any jar there); return ``target``. ``created_by`` goes
        into the manifest. Without ``javac``, the compiler module of ``java`` (a Java runtime's binary) compiles. A
    missing compiler or a failed compile raises ``error(message)``."""
    with tempfile.TemporaryDirectory(prefix=f"{target.stem}-") as work:
        classes_dir = Path(work) / "classes"
        classes_dir.mkdir()
        command = [
            *_javac(error, java),
            "--release",
            release,
            "-nowarn",
            "-encoding",
            "UTF-8",
            "-cp",
            os.pathsep.join(str(jar) for jar in classpath),
            "-d",
            str(classes_dir),
            *(str(source) for source in source_files(sources_dir)),
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise error(f"javac failed ({result.returncode}):\n{result.stderr}{result.stdout}")
        write_atomically(target, lambda path: _write_jar(classes_dir, path, created_by))
    return target


_COMPILER_MODULE = "jdk.compiler/com.sun.tools.javac.Main"


def _javac(error: Callable[[str], Exception], java: str | None = None) -> list[str]:
    """The command that runs the compiler: ``javac``, else ``java``'s compiler module when it has one."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "javac").is_file():
        return [str(Path(java_home) / "bin" / "javac")]
    found = shutil.which("javac")
    if found is not None:
        return [found]
    if java is not None and _has_compiler_module(java):
        return [java, "-m", _COMPILER_MODULE]
    raise error("javac not found: install a JDK (17) or set JAVA_HOME")


def _has_compiler_module(java: str) -> bool:
    try:
        result = subprocess.run([java, "--list-modules"], capture_output=True, text=True, check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return any(line.startswith("jdk.compiler@") for line in result.stdout.splitlines())


def _write_jar(classes_dir: Path, target: Path, created_by: str) -> None:
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as jar:
        jar.writestr("META-INF/MANIFEST.MF", f"Manifest-Version: 1.0\r\nCreated-By: {created_by}\r\n\r\n")
        for path in sorted(classes_dir.rglob("*.class")):
            jar.write(path, path.relative_to(classes_dir).as_posix())
