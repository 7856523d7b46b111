"""Build the example Java jobs (``examples/jobs/java``) into one jar, cached by content.

The examples (fraud scoring from Kafka to Kafka, bronze ingestion from Kafka to files, and a batch job over
S3 files) are plain DataStream jobs. They are compiled with ``javac`` against the jars of the Flink
distribution that the ``apache-flink`` wheel ships plus the Kafka connector fat jar, so building needs a JDK
but no Maven project. The connector is a compile-time dependency only: it is *not* copied into the examples
jar, because flinkops puts it on the cluster classpath when a deployment runs (one copy per cluster, the same
one the jobs' Kafka admin checks and sources use).

Outputs:

* ``cache_dir()/examples/flinkops-examples-<sha12>.jar``: the build. ``<sha12>`` is a digest of the sources
  (relative paths and bytes), the Flink version, the connector coordinates and the Java release, so a present
  jar is reused as is and any change rebuilds. It is written to a temporary file and renamed into place, so a
  reader or a concurrent builder never sees a torn jar.
* ``examples/jobs/target/flinkops-examples.jar``: a copy at a stable path that the example deployment files
  reference (also replaced atomically; ignored by git).

The javac build and the atomic writes are :mod:`flinkops.flink.javabuild`, shared with the test jobs.

Called by: ``python -m flinkops.dev.example_jobs``, tests and benchmarks that run the examples. Works from a
source checkout only (the examples are not part of the installed package).
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from flinkops.api.plugins import connector_coordinates
from flinkops.artifacts import cache_dir
from flinkops.errors import FlinkopsError
from flinkops.flink import javabuild
from flinkops.flink.distribution import find_distribution
from flinkops.flink.jars import connector_jar

__all__ = [
    "BRONZE_INGEST_JOB",
    "CONVERSIONS_BATCH_JOB",
    "FRAUD_SCORING_JOB",
    "SOURCES_DIR",
    "TARGET_JAR",
    "ExampleJobsBuildError",
    "build_example_jobs",
    "kafka_connector_jar",
    "sources_digest",
]

_REPO = Path(__file__).resolve().parents[3]
SOURCES_DIR = _REPO / "examples" / "jobs" / "java"
TARGET_JAR = _REPO / "examples" / "jobs" / "target" / "flinkops-examples.jar"

# Entry classes in the jar; their arguments are documented in each class's Javadoc.
# --bootstrap-servers --input-topic --output-topic --group-id --transactional-id-prefix --model v1|v2
FRAUD_SCORING_JOB = "flinkops.examples.FraudScoringJob"
# --bootstrap-servers --topic --group-id --output URI
BRONZE_INGEST_JOB = "flinkops.examples.BronzeIngestJob"
# --input URI --output URI (batch; ends FINISHED, or FAILED on a malformed line)
CONVERSIONS_BATCH_JOB = "flinkops.examples.ConversionsBatchJob"

Progress = Callable[[str], None]


class ExampleJobsBuildError(javabuild.JavaBuildError):
    """javac is missing, the examples' sources are not there, or they did not compile."""


def kafka_connector_jar(progress: Progress | None = None) -> Path:
    """The Kafka connector fat jar built for the running Flink (what ``flinkops.connectors: kafka`` adds)."""
    return connector_jar("kafka", find_distribution().version, progress=progress)


def sources_digest() -> str:
    """The first 12 hex digits of the sha256 over the sources and everything else that shapes the classes."""
    connector = ":".join(connector_coordinates("kafka", find_distribution().version))
    identity = f"flink={find_distribution().version};connector={connector};release={javabuild.JAVA_RELEASE}"
    return javabuild.sources_digest(SOURCES_DIR, identity)


def _same_content(a: Path, b: Path) -> bool:
    if not b.is_file() or a.stat().st_size != b.stat().st_size:
        return False
    return hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()


def build_example_jobs(progress: Progress | None = None) -> Path:
    """The path of the cached examples jar, compiling it first unless a jar for these exact inputs exists.

    Also refreshes the stable copy at :data:`TARGET_JAR`. ``progress`` receives one line per slow step
    (fetching the connector, compiling).
    """
    if not SOURCES_DIR.is_dir() or not javabuild.source_files(SOURCES_DIR):
        raise ExampleJobsBuildError(
            f"no example sources in {SOURCES_DIR}: build the examples from a flinkops source checkout"
        )
    cache = cache_dir() / "examples"
    target = cache / f"flinkops-examples-{sources_digest()}.jar"
    if not target.is_file():
        connector = kafka_connector_jar(progress)
        if progress is not None:
            progress(f"compiling {len(javabuild.source_files(SOURCES_DIR))} example sources into {target.name}")
        classpath = [*find_distribution().lib_jars(), connector]
        javabuild.build_jar(SOURCES_DIR, classpath, target, created_by="flinkops examples", error=ExampleJobsBuildError)
    if not _same_content(target, TARGET_JAR):
        javabuild.write_atomically(TARGET_JAR, lambda partial: shutil.copyfile(target, partial))
    return target


def main() -> int:
    """Build the examples jar and print its cached path (progress goes to stderr)."""
    try:
        path = build_example_jobs(progress=lambda line: print(line, file=sys.stderr, flush=True))
    except FlinkopsError as exc:  # javac, the connector download (ArtifactError), no distribution
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
