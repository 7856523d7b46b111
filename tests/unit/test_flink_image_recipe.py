"""The Flink image's two recipes agree: deploy/docker/flink.Dockerfile (for readers and Docker users) and the
builder the dev node uses without Docker (flinkops.dev.node.image): the same Debian packages, the same user,
the same configuration edits, the same entrypoint, command and ports. And the entrypoint itself: valid bash,
the official image's commands, its help without starting anything. The built image runs for real in
tests/kubernetes/test_node_live.py."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from flinkops.dev.node import image
from support.dockerfile import REPO, parse

DOCKERFILE = REPO / "deploy" / "docker" / "flink.Dockerfile"
ENTRYPOINT = REPO / "src" / "flinkops" / "dev" / "node" / "docker-entrypoint.sh"


def test_the_dockerfile_installs_the_packages_and_user_the_builder_puts_in_its_base_layer() -> None:
    runs = " ".join(i.args for i in parse(DOCKERFILE.read_text()) if i.keyword == "RUN")
    installed = re.search(r"apt-get install -y --no-install-recommends\s+([^&]+)", runs)
    assert installed is not None
    assert set(installed.group(1).replace("\\", " ").split()) == set(image.BASE_PACKAGES)
    assert f"groupadd --system --gid {image.FLINK_GID} flink" in runs
    assert f"--uid {image.FLINK_UID} --gid {image.FLINK_GID}" in runs
    assert "FROM debian:bookworm" in DOCKERFILE.read_text() and image.SUITE == "bookworm"


def test_the_dockerfile_makes_the_same_configuration_edits_as_the_builder() -> None:
    runs = " ".join(i.args for i in parse(DOCKERFILE.read_text()) if i.keyword == "RUN")
    replaced = set(re.findall(r"-repKV ([\w.-]+),localhost,0\.0\.0\.0", runs))
    assert replaced == set(image._BIND_EVERYWHERE)
    assert "-rmKV taskmanager.host=localhost" in runs
    edited = image.flink_config_yaml("taskmanager:\n  host: localhost\n")
    assert "host: localhost" not in edited


def test_entrypoint_command_and_ports_match() -> None:
    final = parse(DOCKERFILE.read_text())
    by_keyword = {i.keyword: i for i in final}
    assert by_keyword["ENTRYPOINT"].exec_form() == ["/docker-entrypoint.sh"]
    assert by_keyword["CMD"].exec_form() == ["help"]
    assert by_keyword["EXPOSE"].args.split() == ["6123", "8081"]
    assert by_keyword["WORKDIR"].args == "/opt/flink"
    copies = [i.args for i in final if i.keyword == "COPY"]
    assert any(c.endswith("src/flinkops/dev/node/docker-entrypoint.sh /docker-entrypoint.sh") for c in copies)
    assert image.entrypoint_script() == ENTRYPOINT.read_bytes()
    assert "FLINK_HOME=/opt/flink" in by_keyword["ENV"].args


def test_the_recipe_names_no_host_to_download_from() -> None:
    assert not re.search(r"https?://", DOCKERFILE.read_text())


def test_the_entrypoint_is_valid_bash_with_the_official_commands() -> None:
    assert ENTRYPOINT.stat().st_mode & 0o111
    subprocess.run(["bash", "-n", str(ENTRYPOINT)], check=True)
    text = ENTRYPOINT.read_text()
    for command in ("jobmanager)", "standalone-job)", "taskmanager)", "history-server)"):
        assert command in text
    for script in ("jobmanager.sh", "standalone-job.sh", "taskmanager.sh"):
        assert f'$FLINK_HOME/bin/{script}" start-foreground' in text
    shown = subprocess.run(["bash", str(ENTRYPOINT), "help"], capture_output=True, text=True, check=True)
    assert "jobmanager|standalone-job|taskmanager" in shown.stdout


def test_the_builder_and_the_dockerfile_share_one_entrypoint_file() -> None:
    assert Path(image.__file__).with_name("docker-entrypoint.sh") == ENTRYPOINT


def test_both_recipes_record_class_data_sharing_archives_the_entrypoint_uses() -> None:
    """The Dockerfile records the same archives, at the same place, as the builder's CDS layer; the entrypoint
    gives the started component's archive to the JVM unless FLINK_CDS=off."""
    from flinkops.dev.node import image_cds

    runs = " ".join(i.args for i in parse(DOCKERFILE.read_text()) if i.keyword == "RUN")
    for component in image_cds.COMPONENTS:
        assert f"-XX:ArchiveClassesAtExit=/{image_cds.CDS_DIR}/{component}.jsa bin/{component}.sh" in runs
        assert f"test -s /{image_cds.CDS_DIR}/{component}.jsa" in runs
    text = ENTRYPOINT.read_text()
    assert 'FLINK_CDS:-on}" = "off" ] && return 0' in text
    assert 'use_cds "$component"' in text
    assert "-XX:SharedArchiveFile=$archive -Xshare:auto" in text


def test_the_entrypoint_gives_each_component_its_own_archive() -> None:
    """Run the entrypoint's dispatch with stand-in Flink scripts: the JobManager commands (session, application,
    native) get the JobManager's archive, the TaskManager ones the TaskManager's; FLINK_CDS=off gives none. As
    root the entrypoint would switch to the flink user, so the test runs it as that user itself."""
    home = Path(tempfile.mkdtemp(prefix="flinkops-entrypoint-")) / "flink"
    home.parent.chmod(0o755)
    (home / "bin").mkdir(parents=True)
    (home / "cds").mkdir()
    (home / "conf").mkdir()
    for name in ("jobmanager", "taskmanager"):
        (home / "cds" / f"{name}.jsa").write_bytes(b"x")
    scripts = (
        "jobmanager.sh",
        "standalone-job.sh",
        "taskmanager.sh",
        "kubernetes-jobmanager.sh",
        "kubernetes-taskmanager.sh",
    )
    for script in scripts:
        (home / "bin" / script).write_text('#!/bin/sh\necho "JTO=$JAVA_TOOL_OPTIONS"\n')
        (home / "bin" / script).chmod(0o755)
    (home / "conf" / "config.yaml").write_text("")
    (home / "conf").chmod(0o555)  # read-only: the entrypoint leaves the configuration alone

    def options(*args: str, **env: str) -> str:
        as_user = ["setpriv", "--reuid=9999", "--regid=9999", "--clear-groups"] if os.getuid() == 0 else []
        done = subprocess.run(
            [*as_user, "bash", str(ENTRYPOINT), *args],
            capture_output=True,
            text=True,
            check=True,
            env={"PATH": f"{home / 'bin'}:/usr/bin:/bin", "FLINK_HOME": str(home), "DISABLE_JEMALLOC": "true", **env},
        )
        return [line for line in done.stdout.splitlines() if line.startswith("JTO=")][-1]

    try:
        for args in (
            ("jobmanager",),
            ("standalone-job", "--job-id", "x"),
            ("bash", "-c", "kubernetes-jobmanager.sh s"),
        ):
            assert f"-XX:SharedArchiveFile={home}/cds/jobmanager.jsa -Xshare:auto" in options(*args)
        for args in (("taskmanager",), ("bash", "-c", f"exec {home}/bin/kubernetes-taskmanager.sh -Dx=y")):
            assert f"-XX:SharedArchiveFile={home}/cds/taskmanager.jsa" in options(*args)
        assert options("jobmanager", FLINK_CDS="off") == "JTO="
        # Any other command runs without an archive (a JVM would print "Picked up JAVA_TOOL_OPTIONS" before its
        # output), even a script that mentions a Flink script.
        assert options("bash", "-c", 'echo "JTO=$JAVA_TOOL_OPTIONS"; : kubernetes-jobmanager.sh') == "JTO="
        assert f"{home}/cds/taskmanager.jsa" in options("sh", "-c", "kubernetes-taskmanager.sh", "-x")
    finally:
        (home / "conf").chmod(0o755)
        shutil.rmtree(home.parent)
