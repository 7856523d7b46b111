"""A local target for service-layer tests: the real SQLite store in a temp home, a manual clock, and no daemon.

``ensure_controller`` only counts (tests play the controller by writing status themselves), and the clock's
``sleep`` runs the hooks a test registered, so a wait loop sees the world change without real time passing.
The preflight of local files runs only with ``preflight=True`` (most tests name jars that need not exist).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from flinkops.api.models import (
    FlinkDeployment,
    FlinkDeploymentSpec,
    FlinkSessionJob,
    FlinkSessionJobSpec,
    FlinkVersion,
    JobSpec,
)
from flinkops.api.models import ObjectMeta as Meta
from flinkops.cli import target as cli_target
from flinkops.provisioning.preflight import LocalFiles
from flinkops.service.target import LocalTarget

JOB = "a1b2c3d4e5f60718293a4b5c6d7e8f90"


class ManualClock:
    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.time = start
        self.hooks: list[Callable[[], None]] = []

    def now(self) -> float:
        return self.time

    def sleep(self, seconds: float) -> None:
        self.time += seconds
        for hook in list(self.hooks):
            hook()


class TestTarget(LocalTarget):
    """A local target whose controller never starts: ``controller_starts`` counts the requests."""

    __test__ = False  # not a pytest test class

    def __init__(self, home: Path, *, preflight: bool = False) -> None:
        self.manual_clock = ManualClock()
        super().__init__(home, self.manual_clock)
        self.controller_starts = 0
        self.preflight = preflight

    def ensure_controller(self) -> None:
        self.controller_starts += 1

    def local_files(self, resources: Sequence[FlinkDeployment | FlinkSessionJob], *, fetch: bool = True) -> LocalFiles:
        return super().local_files(resources, fetch=fetch) if self.preflight else LocalFiles()


def cli_on(target: TestTarget, monkeypatch: pytest.MonkeyPatch) -> TestTarget:
    """Point the CLI run in this process (``CliRunner``) at ``target``. Each command resets the chosen target as it
    parses its options, so the lookup itself is replaced; ``FLINKOPS_HOME`` is the target's home too, in case
    anything still reads it."""
    monkeypatch.setenv("FLINKOPS_HOME", str(target.home))
    monkeypatch.setattr(cli_target, "current", lambda: target)
    return target


def deployment(
    name: str = "fraud", parallelism: int = 1, config: dict[str, str] | None = None, **job: object
) -> FlinkDeployment:
    spec = FlinkDeploymentSpec(
        flink_version=FlinkVersion.v2_2,
        flink_configuration=config or {},
        job=JobSpec.model_validate({"jar_uri": "local:///job.jar", "parallelism": parallelism, **job}),
    )
    return FlinkDeployment(metadata=Meta(name=name), spec=spec)


def deployment_yaml(name: str = "good") -> str:
    """``deployment(name)`` as the YAML a user writes: a valid application deployment with one job."""
    return f"""\
apiVersion: flink.apache.org/v1beta1
kind: FlinkDeployment
metadata:
  name: {name}
spec:
  flinkVersion: v2_2
  job:
    jarURI: local:///job.jar
    parallelism: 1
"""


def session_cluster(name: str = "session") -> FlinkDeployment:
    return FlinkDeployment(metadata=Meta(name=name), spec=FlinkDeploymentSpec(flink_version=FlinkVersion.v2_2))


def session_job(name: str = "sj", cluster: str = "session") -> FlinkSessionJob:
    spec = FlinkSessionJobSpec(deployment_name=cluster, job=JobSpec(jar_uri="local:///job.jar", parallelism=1))
    return FlinkSessionJob(metadata=Meta(name=name), spec=spec)
