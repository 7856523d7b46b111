"""The controller's per-pass memo of jars (``controller.requests.RequestBuilder``): one fetch per jar and pass, but
a jar is what its URI means *for that resource* (``/opt/flink/usrlib/`` is each resource's own directory)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from fakes.provisioning import FakeProvisioner
from fakes.snapshots import FakeSnapshots
from fakes.specs import session_job
from fakes.store import FakeStore
from flinkops.api.models import FlinkSessionJob
from flinkops.controller.requests import RequestBuilder
from flinkops.settings import USRLIB_ANNOTATION

USRLIB_JAR = "local:///opt/flink/usrlib/job.jar"


class UsrlibProvisioner(FakeProvisioner):
    """Resolves ``/opt/flink/usrlib/`` against the resource's ``flinkops.io/usrlib`` annotation, counting fetches."""

    def __init__(self) -> None:
        super().__init__(FakeSnapshots())
        self.fetches = 0

    def usrlib_dir(self, resource: FlinkSessionJob) -> Path | None:  # type: ignore[override]
        chosen = (resource.metadata.annotations or {}).get(USRLIB_ANNOTATION)
        return Path(chosen) if chosen else None

    def fetch_jar(self, uri: str, base: Path | None, config: Mapping[str, str], usrlib: Path | None = None) -> Path:
        self.fetches += 1
        assert usrlib is not None
        return usrlib / uri.rsplit("/", 1)[1]


def job_in(name: str, usrlib: str) -> FlinkSessionJob:
    job = session_job(name, "session", jarURI=USRLIB_JAR)
    meta = job.metadata.model_copy(update={"annotations": {USRLIB_ANNOTATION: usrlib}})
    return job.model_copy(update={"metadata": meta})


def test_two_resources_naming_the_same_usrlib_jar_each_get_their_own() -> None:
    provisioner = UsrlibProvisioner()
    builder = RequestBuilder(FakeStore(), provisioner)
    builder.begin_pass()
    team_a, team_b = job_in("a", "/teams/a"), job_in("b", "/teams/b")
    assert builder.session_job_jar(team_a, team_a.spec) == Path("/teams/a/job.jar")
    assert builder.session_job_jar(team_b, team_b.spec) == Path("/teams/b/job.jar")
    assert builder.session_job_jar(team_a, team_a.spec) == Path("/teams/a/job.jar")
    assert provisioner.fetches == 2, "fetched once per resource's meaning of the URI in a pass"
