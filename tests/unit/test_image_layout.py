"""The official image's layout on this machine and the entry class from the jar (issue 12, items 1 and 2).

``local:///opt/flink/...`` resolves against the local Flink distribution, ``/opt/flink/usrlib/`` against the
user's directory, the image's example jars are made from the nearest published release (Maven replaced by fakes
here), and a job without ``entryClass`` runs its jar's Main-Class instead of an empty class name.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from flinkops.api.models import JobSpec
from flinkops.errors import PermanentError
from flinkops.flink.distribution import FlinkDistribution
from flinkops.flink.examples import example_jar, nearest_release
from flinkops.flink.jars import manifest_entry_class
from flinkops.flink.layout import ImageLayout, image_relative
from flinkops.ports import ApplicationJob
from flinkops.provisioning.local import LocalProvisioner
from flinkops.runtimes.local.launch import jobmanager_args

PUBLISHED = ["1.18.1", "1.19.0", "1.19.1", "1.20.0", "2.3.0"]  # flink-examples-streaming, as Maven lists it
STATE_MACHINE = "org.apache.flink.streaming.examples.statemachine.StateMachineExample"
TABLE_PUBLISHED = ["1.16.0", "1.16.2", "2.3.0"]  # flink-examples-table_2.12, as Maven lists it
TABLE_CLASSES = (
    "org/apache/flink/table/examples/java/basics/StreamSQLExample.class",
    "org/apache/flink/table/examples/java/connectors/ChangelogSocketExample.class",
    "META-INF/services/org.apache.flink.table.factories.Factory",
)


def make_jar(path: Path, manifest: str | None, classes: tuple[str, ...] = ("a/B.class",)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as jar:
        if manifest is not None:
            jar.writestr("META-INF/MANIFEST.MF", manifest)
        for name in classes:
            jar.writestr(name, b"\xca\xfe\xba\xbe")
    return path


@pytest.fixture
def dist(tmp_path: Path) -> FlinkDistribution:
    home = tmp_path / "pyflink"
    for sub in ("lib", "opt", "plugins", "bin", "conf"):
        (home / sub).mkdir(parents=True)
    make_jar(home / "opt" / "flink-python-2.2.1.jar", "Manifest-Version: 1.0\r\n")
    make_jar(home / "lib" / "flink-dist-2.2.1.jar", "Manifest-Version: 1.0\r\n")
    return FlinkDistribution(home=home, version="2.2.1", java="java")


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FLINKOPS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


class FakeMaven:
    """The published example artifact: its versions and the plain jar (no Main-Class), counting calls."""

    def __init__(self, tmp: Path, published: list[str], table: list[str] | None = None) -> None:
        self.tmp, self.published, self.table = tmp, published, table or []
        self.listed = 0
        self.fetched: list[str] = []
        self.artifacts: list[str] = []  # the artifacts fetched, in order

    def versions(self, group: str, artifact: str) -> list[str]:
        self.listed += 1
        return list(self.table if artifact.startswith("flink-examples-table") else self.published)

    def fetch(self, group: str, artifact: str, version: str) -> Path:
        self.fetched.append(version)
        self.artifacts.append(artifact)
        classes = (
            TABLE_CLASSES
            if artifact.startswith("flink-examples-table")
            else ("org/apache/flink/streaming/examples/statemachine/StateMachineExample.class",)
        )
        return make_jar(self.tmp / f"{artifact}-{version}.jar", "Manifest-Version: 1.0\r\nBuilt-By: x\r\n", classes)


# ------------------------------------------------------------------------------------------------ /opt/flink paths


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("local:///opt/flink/examples/streaming/WordCount.jar", "examples/streaming/WordCount.jar"),
        ("file:///opt/flink/usrlib/job.jar", "usrlib/job.jar"),
        ("/opt/flink/usrlib/python_demo.py", "usrlib/python_demo.py"),
        ("local:///opt/flinkx/job.jar", None),
        ("local:///opt/flink/../etc/passwd", None),
        ("https://example.org/opt/flink/job.jar", None),
        ("job.jar", None),
        ("--checkpoint-dir", None),
    ],
)
def test_only_paths_inside_the_images_flink_home_are_mapped(value: str, expected: str | None) -> None:
    found = image_relative(value)
    assert (str(found) if found is not None else None) == expected


def test_usrlib_is_the_users_directory(dist: FlinkDistribution, tmp_path: Path) -> None:
    mapped = ImageLayout(dist, tmp_path / "jobs").map("local:///opt/flink/usrlib/my-job.jar")
    assert mapped is not None and mapped.path == tmp_path / "jobs" / "my-job.jar"
    assert "usrlib" in mapped.line()


def test_distribution_paths_resolve_against_the_local_flink(dist: FlinkDistribution) -> None:
    layout = ImageLayout(dist, None)
    lib = layout.map("local:///opt/flink/lib/flink-dist-2.2.1.jar")
    assert lib is not None and lib.path == dist.home / "lib" / "flink-dist-2.2.1.jar"
    # the reference's Python example names the image's flink-python jar, of another version
    python = layout.map("local:///opt/flink/opt/flink-python_2.12-1.16.1.jar")
    assert python is not None and python.path == dist.home / "opt" / "flink-python-2.2.1.jar"


def test_job_arguments_inside_the_image_are_made_local(dist: FlinkDistribution, tmp_path: Path) -> None:
    args, mapped = ImageLayout(dist, tmp_path).map_args(["-py", "/opt/flink/usrlib/python_demo.py", "--x", "1"])
    assert args == ("-py", str(tmp_path / "python_demo.py"), "--x", "1")
    assert len(mapped) == 1


# ------------------------------------------------------------------------------------------------ example jars


@pytest.mark.parametrize(
    ("local", "published", "chosen"),
    [
        ("2.2.1", PUBLISHED, "2.3.0"),  # 2.0-2.2 publish no examples: the next release of the same major
        ("2.2.1", ["2.1.0", "2.2.0", "2.3.0"], "2.2.0"),  # an older one of the same major comes first
        ("2.2.1", ["2.2.1", "2.3.0"], "2.2.1"),
        ("1.20.1", PUBLISHED, "1.20.0"),
        ("2.2.1", ["1.19.1", "1.20.0"], None),  # Flink 1 examples do not run on Flink 2
        ("2.2.1", ["2.3.0-rc1", "2.4.0"], "2.4.0"),
    ],
)
def test_the_nearest_published_release_that_runs_on_the_local_flink(
    local: str, published: list[str], chosen: str | None
) -> None:
    assert nearest_release(local, published) == chosen


def test_example_jar_is_made_once_from_the_nearest_release_with_its_main_class(tmp_path: Path) -> None:
    maven = FakeMaven(tmp_path, PUBLISHED)
    made = example_jar("streaming/StateMachineExample.jar", "2.2.1", versions=maven.versions, fetch=maven.fetch)
    assert made.release == "2.3.0" and maven.fetched == ["2.3.0"]
    assert manifest_entry_class(made.path) == STATE_MACHINE
    assert "2.2.1 is not published" in made.describe("2.2.1")
    with zipfile.ZipFile(made.path) as jar:
        assert "org/apache/flink/streaming/examples/statemachine/StateMachineExample.class" in jar.namelist()
    # cached: neither listing nor fetching again, for this jar or another of the same artifact
    again = example_jar("streaming/StateMachineExample.jar", "2.2.1", versions=maven.versions, fetch=maven.fetch)
    assert again.path == made.path and maven.listed == 1 and maven.fetched == ["2.3.0"]
    other = example_jar("streaming/TopSpeedWindowing.jar", "2.2.1", versions=maven.versions, fetch=maven.fetch)
    assert maven.listed == 1 and other.release == "2.3.0"
    assert manifest_entry_class(other.path) == "org.apache.flink.streaming.examples.windowing.TopSpeedWindowing"
    assert json.loads(other.path.with_suffix(".json").read_text())["release"] == "2.3.0"


def test_table_examples_are_made_from_the_table_artifact_with_their_own_release_choice(tmp_path: Path) -> None:
    maven = FakeMaven(tmp_path, PUBLISHED, table=TABLE_PUBLISHED)
    made = example_jar("table/StreamSQLExample.jar", "2.2.1", versions=maven.versions, fetch=maven.fetch)
    assert maven.artifacts == ["flink-examples-table_2.12"] and made.release == "2.3.0"
    assert manifest_entry_class(made.path) == "org.apache.flink.table.examples.java.basics.StreamSQLExample"
    assert made.path.parts[-2:] == ("table", "StreamSQLExample.jar")
    assert "flink-examples-table_2.12 2.3.0" in made.describe("2.2.1")
    with zipfile.ZipFile(made.path) as jar:  # the connector example's table factory is found through this file
        assert "META-INF/services/org.apache.flink.table.factories.Factory" in jar.namelist()
    socket = example_jar("table/ChangelogSocketExample.jar", "2.2.1", versions=maven.versions, fetch=maven.fetch)
    assert manifest_entry_class(socket.path) == "org.apache.flink.table.examples.java.connectors.ChangelogSocketExample"
    assert maven.listed == 1, "the table artifact's release is chosen once"
    streaming = example_jar("streaming/WordCount.jar", "2.2.1", versions=maven.versions, fetch=maven.fetch)
    assert maven.listed == 2 and streaming.release == "2.3.0", "the streaming artifact's release is its own choice"
    # a Flink 1.16 machine takes its own release of the table examples
    older = example_jar("table/StreamSQLExample.jar", "1.16.2", versions=maven.versions, fetch=maven.fetch)
    assert older.release == "1.16.2"


@pytest.mark.parametrize(
    "name",
    [
        "GettingStartedExample",
        "UpdatingTopCityExample",
        "StreamSQLExample",
        "StreamWindowSQLExample",
        "WordCountSQLExample",
        "ChangelogSocketExample",
        "AdvancedFunctionsExample",
    ],
)
def test_every_table_jar_of_the_image_is_known_and_named_in_plan_before_it_is_made(
    dist: FlinkDistribution, name: str
) -> None:
    mapped = ImageLayout(dist, None).map(f"local:///opt/flink/examples/table/{name}.jar", fetch=False)
    assert mapped is not None and mapped.path is None and "flink-examples-table_2.12" in mapped.how


def test_an_example_no_release_of_which_runs_here_says_so(tmp_path: Path) -> None:
    maven = FakeMaven(tmp_path, ["1.18.0"])
    with pytest.raises(PermanentError, match=r"runs on the local Flink 2\.2\.1.*streaming/WordCount\.jar"):
        example_jar("batch/WordCount.jar", "2.2.1", versions=maven.versions, fetch=maven.fetch)


def test_an_unknown_example_names_the_known_ones(dist: FlinkDistribution) -> None:
    with pytest.raises(PermanentError, match=r"StateMachineExample\.jar"):
        ImageLayout(dist, None).map("local:///opt/flink/examples/streaming/Nope.jar")


def test_layout_without_fetching_names_an_example_not_made_yet(dist: FlinkDistribution) -> None:
    mapped = ImageLayout(dist, None).map("local:///opt/flink/examples/streaming/StateMachineExample.jar", fetch=False)
    assert mapped is not None and mapped.path is None and "first use" in mapped.how


# ------------------------------------------------------------------------------------------------ entry class


def test_manifest_entry_class_reads_program_class_first_then_main_class(tmp_path: Path) -> None:
    both = make_jar(tmp_path / "a.jar", "Manifest-Version: 1.0\r\nMain-Class: a.Main\r\nprogram-class: a.Program\r\n")
    main = make_jar(
        tmp_path / "b.jar", "Manifest-Version: 1.0\r\nMain-Class: org.example.very.long.packag\r\n e.Job\r\n"
    )
    none = make_jar(tmp_path / "c.jar", "Manifest-Version: 1.0\r\n")
    bare = make_jar(tmp_path / "d.jar", None)
    assert manifest_entry_class(both) == "a.Program"
    assert manifest_entry_class(main) == "org.example.very.long.package.Job"
    assert manifest_entry_class(none) is None
    assert manifest_entry_class(bare) is None


def test_jobmanager_runs_the_jars_main_class_when_the_spec_names_none(tmp_path: Path) -> None:
    jar = make_jar(tmp_path / "job.jar", f"Manifest-Version: 1.0\r\nMain-Class: {STATE_MACHINE}\r\n")
    app = ApplicationJob(entry_class="", args=("--x",), job_id="j1", jar_paths=(jar,))
    args = jobmanager_args(0, 0, app)
    assert args[args.index("--job-classname") + 1] == STATE_MACHINE
    assert "" not in args


def test_jobmanager_never_gets_an_empty_class_name(tmp_path: Path) -> None:
    jar = make_jar(tmp_path / "job.jar", "Manifest-Version: 1.0\r\n")
    args = jobmanager_args(0, 0, ApplicationJob(entry_class="", args=(), job_id="j1", jar_paths=(jar,)))
    assert "--job-classname" not in args and "" not in args


def test_a_job_without_entry_class_whose_jar_names_none_fails_before_deploy(
    dist: FlinkDistribution, tmp_path: Path
) -> None:
    make_jar(tmp_path / "job.jar", "Manifest-Version: 1.0\r\n")
    provisioner = LocalProvisioner(tmp_path / "home", dist, "python3")
    job = JobSpec(jar_uri="local:///opt/flink/usrlib/job.jar")
    with pytest.raises(PermanentError, match=r"spec\.job\.entryClass.*Main-Class"):
        provisioner.job_jars(job, tmp_path, {}, tmp_path)
    named = JobSpec(jar_uri="local:///opt/flink/usrlib/job.jar", entry_class="a.B")
    assert provisioner.job_jars(named, tmp_path, {}, tmp_path) == (tmp_path / "job.jar",)


def test_a_missing_jar_inside_the_image_says_where_it_was_looked_for(dist: FlinkDistribution, tmp_path: Path) -> None:
    provisioner = LocalProvisioner(tmp_path / "home", dist, "python3")
    with pytest.raises(PermanentError, match=r"spec\.job\.jarURI: .*usrlib/gone\.jar is .*gone\.jar on this machine"):
        provisioner.fetch_jar("local:///opt/flink/usrlib/gone.jar", tmp_path, {}, None)
