"""``artifacts.maven_versions``: which releases of an artifact the user's Maven repositories publish, read from the
metadata one ``mvn`` run leaves in the user's local repository (a stand-in ``mvn`` plays Maven here)."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest

from flinkops.artifacts import ArtifactError, maven_versions, version_key

# Resolving a version range downloads the artifact's metadata into the local repository (the one settings.xml
# names, else ~/.m2/repository), then fails here as Maven does when the newest release's parent pom is missing.
FAKE_MVN = """
import os, sys
from pathlib import Path
if "dependency:list" not in sys.argv:
    sys.exit(2)
settings = Path.home() / ".m2" / "settings.xml"
repo = Path(os.environ["FAKE_LOCAL_REPO"]) if settings.exists() else Path.home() / ".m2" / "repository"
if "no-such" in Path("pom.xml").read_text():
    print("[ERROR] Could not find artifact org.example:no-such")
    sys.exit(1)
folder = repo / "org" / "apache" / "flink" / "flink-examples-streaming"
folder.mkdir(parents=True, exist_ok=True)
versions = "".join(f"<version>{v}</version>" for v in ("1.20.0", "1.19.1", "2.3.0", "1.18.1"))
(folder / "maven-metadata-central.xml").write_text(
    f"<metadata><versioning><versions>{versions}</versions></versioning></metadata>"
)
print("[ERROR] Failed to read artifact descriptor for org.apache.flink:flink-examples-streaming:jar:2.3.0")
sys.exit(1)
"""


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    mvn = bin_dir / "mvn"
    mvn.write_text(f"#!{sys.executable}\n{FAKE_MVN}")
    mvn.chmod(mvn.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FLINKOPS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "home"


def test_versions_come_from_the_metadata_even_when_the_newest_does_not_resolve(home: Path) -> None:
    assert maven_versions("org.apache.flink", "flink-examples-streaming") == ["1.18.1", "1.19.1", "1.20.0", "2.3.0"]


def test_the_local_repository_of_settings_xml_is_read(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (home / ".m2").mkdir(parents=True)
    (home / ".m2" / "settings.xml").write_text(
        '<settings xmlns="http://maven.apache.org/SETTINGS/1.0.0">'
        "<localRepository>${user.home}/elsewhere</localRepository></settings>"
    )
    monkeypatch.setenv("FAKE_LOCAL_REPO", str(home / "elsewhere"))
    assert "2.3.0" in maven_versions("org.apache.flink", "flink-examples-streaming")


def test_an_artifact_without_metadata_is_an_artifact_error_with_what_maven_said(home: Path) -> None:
    with pytest.raises(ArtifactError, match="no-such"):
        maven_versions("org.example", "no-such")


def test_release_numbers_sort_as_numbers() -> None:
    assert sorted(["1.9.0", "1.20.0", "2.3.0", "1.18.1"], key=version_key) == ["1.9.0", "1.18.1", "1.20.0", "2.3.0"]
