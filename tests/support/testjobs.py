"""Build the Java test jobs (``tests/jobs/java``) into one cached jar.

Integration tests and benchmarks call :func:`testjobs_jar` to get a jar they can upload to a Flink cluster
or put in ``usrlib``. The sources are compiled with ``javac`` against the jars of the Flink distribution that
the ``apache-flink`` wheel ships, so no Maven and no network are needed.

Invariant: the jar at ``~/.cache/flinkops/testjobs/flinkops-testjobs-<hash>.jar`` is always complete. It is
named after the sha256 of the sources (their relative paths and bytes), built in a temporary file and renamed
into place atomically, so a present jar is reused as is and concurrent builders cannot expose a torn file (the
build itself is :mod:`flinkops.flink.javabuild`, shared with the example jobs).
"""

from __future__ import annotations

import os
from pathlib import Path

from flinkops.flink import javabuild

__all__ = [
    "BOUNDED_JOB",
    "COUNTING_JOB",
    "FAILING_JOB",
    "SECRET_PROBE_JOB",
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
SECRET_PROBE_JOB = "flinkops.testjobs.SecretProbeJob"  # --probe-out=F --probe-password=V --probe-keys=K,K + CountingJob


class TestJobsBuildError(RuntimeError):
    """javac is missing or the test job sources did not compile."""

    __test__ = False  # not a pytest test class despite the name


def flink_lib_dir() -> Path:
    """The ``lib/`` directory of the Flink distribution inside the installed ``apache-flink`` wheel."""
    import pyflink  # imported lazily: only the build needs it

    return Path(os.path.dirname(os.path.abspath(pyflink.__file__))) / "lib"


def sources_digest() -> str:
    """The first 12 hex digits of the sha256 over every source's relative path and content."""
    return javabuild.sources_digest(SOURCES_DIR)


def testjobs_jar(cache_dir: Path | None = None) -> Path:
    """The path of the test jobs jar, compiling it first unless a jar for these exact sources exists."""
    cache = cache_dir if cache_dir is not None else DEFAULT_CACHE_DIR
    target = cache / f"flinkops-testjobs-{sources_digest()}.jar"
    if target.is_file():
        return target
    classpath = sorted(flink_lib_dir().glob("*.jar"))
    return javabuild.build_jar(SOURCES_DIR, classpath, target, created_by="flinkops tests", error=TestJobsBuildError)


testjobs_jar.__test__ = False  # type: ignore[attr-defined]  # pytest must not collect it as a test
