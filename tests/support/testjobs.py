"""Build the Java test jobs (``tests/jobs/java``) into one cached jar.

Integration tests and benchmarks call :func:`testjobs_jar` to get a jar they can upload to a Flink cluster
or put in ``usrlib``. The sources are compiled with ``javac`` against the jars of the Flink distribution that
the ``apache-flink`` wheel ships, so no Maven and no network are needed.

Invariant: the jar at ``~/.cache/flinkops/testjobs/flinkops-testjobs-<hash>.jar`` is always complete. It is
named after the sha256 of the sources (their relative paths and bytes), built in a temporary file and renamed
into place atomically, so a present jar is reused as is and concurrent builders cannot expose a torn file.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

__all__ = [
    "BOUNDED_JOB",
    "COUNTING_JOB",
    "FAILING_JOB",
    "SOURCES_DIR",
    "THROWING_MAIN",
    "TestJobsBuildError",
    "flink_lib_dir",
    "sources_digest",
    "testjobs_jar",
]

SOURCES_DIR = Path(__file__).resolve().parents[1] / "jobs" / "java"
DEFAULT_CACHE_DIR = Path.home() / ".cache" / "flinkops" / "testjobs"

# Entry classes in the jar; their arguments are documented on each class.
COUNTING_JOB = "flinkops.testjobs.CountingJob"  # --rate N --records N --keys N --checkpoint-interval MS
FAILING_JOB = "flinkops.testjobs.FailingJob"  # --after N --rate N; ends FAILED
THROWING_MAIN = "flinkops.testjobs.ThrowingMain"  # main() throws before building a job
BOUNDED_JOB = "flinkops.testjobs.BoundedJob"  # --records N; ends FINISHED

_JAVA_RELEASE = "11"  # the oldest Java that Flink 2.x runs on; the distribution's classes target it too


class TestJobsBuildError(RuntimeError):
    """javac is missing or the test job sources did not compile."""

    __test__ = False  # not a pytest test class despite the name


def flink_lib_dir() -> Path:
    """The ``lib/`` directory of the Flink distribution inside the installed ``apache-flink`` wheel."""
    import pyflink  # imported lazily: only the build needs it

    return Path(os.path.dirname(os.path.abspath(pyflink.__file__))) / "lib"


def _source_files() -> list[Path]:
    return sorted(SOURCES_DIR.rglob("*.java"))


def sources_digest() -> str:
    """The first 12 hex digits of the sha256 over every source's relative path and content."""
    digest = hashlib.sha256()
    for source in _source_files():
        digest.update(source.relative_to(SOURCES_DIR).as_posix().encode())
        digest.update(b"\0")
        digest.update(source.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:12]


def _javac() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "javac").is_file():
        return str(Path(java_home) / "bin" / "javac")
    found = shutil.which("javac")
    if found is None:
        raise TestJobsBuildError("javac not found: install a JDK (17) or set JAVA_HOME")
    return found


def _compile(classes_dir: Path) -> None:
    classpath = os.pathsep.join(str(jar) for jar in sorted(flink_lib_dir().glob("*.jar")))
    command = [
        _javac(),
        "--release",
        _JAVA_RELEASE,
        "-nowarn",
        "-encoding",
        "UTF-8",
        "-cp",
        classpath,
        "-d",
        str(classes_dir),
        *(str(source) for source in _source_files()),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise TestJobsBuildError(f"javac failed ({result.returncode}):\n{result.stderr}{result.stdout}")


def _write_jar(classes_dir: Path, target: Path) -> None:
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as jar:
        jar.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\r\nCreated-By: flinkops tests\r\n\r\n")
        for path in sorted(classes_dir.rglob("*.class")):
            jar.write(path, path.relative_to(classes_dir).as_posix())


def testjobs_jar(cache_dir: Path | None = None) -> Path:
    """The path of the test jobs jar, compiling it first unless a jar for these exact sources exists."""
    cache = cache_dir if cache_dir is not None else DEFAULT_CACHE_DIR
    target = cache / f"flinkops-testjobs-{sources_digest()}.jar"
    if target.is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="flinkops-testjobs-") as work:
        classes_dir = Path(work) / "classes"
        classes_dir.mkdir()
        _compile(classes_dir)
        fd, partial = tempfile.mkstemp(dir=cache, prefix=f".{target.name}.", suffix=".partial")
        os.close(fd)
        try:
            _write_jar(classes_dir, Path(partial))
            os.chmod(partial, 0o644)
            os.replace(partial, target)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise
    return target


testjobs_jar.__test__ = False  # type: ignore[attr-defined]  # pytest must not collect it as a test
