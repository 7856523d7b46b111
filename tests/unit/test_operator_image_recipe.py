"""The operator image's two recipes agree: deploy/docker/Dockerfile (for readers and Docker users) and the packer
that builds it here without Docker (flinkops.dev.node.operator_image): the same Debian packages, user, virtualenv
path, environment, entrypoint, command, working directory and port, from the same build context; and the image's
name is the one the Helm chart's default values resolve to. The built image runs for real in
tests/integration/test_operator_image_run.py."""

from __future__ import annotations

import re

import yaml
from typer.testing import CliRunner

import flinkops
from flinkops.cli.main import app
from flinkops.dev.node import operator_image as packer
from support.dockerfile import DOCKERFILE, REPO, Instruction, admitted_paths, parse, stages

CHART = REPO / "deploy" / "helm" / "flinkops"


def _runtime() -> list[Instruction]:
    return stages(parse(DOCKERFILE.read_text()))[-1]


def _runs(stage: list[Instruction]) -> str:
    return " ".join(i.args for i in stage if i.keyword == "RUN")


def test_both_stages_install_the_debian_packages_of_the_packers_base_layer() -> None:
    for stage in stages(parse(DOCKERFILE.read_text())):
        installed = re.search(r"apt-get install -y --no-install-recommends\s+([^&]+)", _runs(stage))
        assert installed is not None, f"line {stage[0].line}: no apt-get install"
        assert set(installed.group(1).split()) == set(packer.OPERATOR_PACKAGES)


def test_the_user_is_made_as_the_packer_makes_it() -> None:
    runs = _runs(_runtime())
    for command in packer._USERS:
        assert " ".join(command) in runs, command
    assert f"--uid {packer.OPERATOR_UID} --gid {packer.OPERATOR_GID}" in runs
    (user,) = [i.args for i in _runtime() if i.keyword == "USER"]
    assert user == f"{packer.OPERATOR_UID}:{packer.OPERATOR_GID}"


def test_environment_entrypoint_command_workdir_and_port_match() -> None:
    by_keyword = {i.keyword: i for i in _runtime()}
    env = dict(re.findall(r"(\w+)=(\S+)", by_keyword["ENV"].args))
    assert env == packer.OPERATOR_ENV
    assert by_keyword["ENTRYPOINT"].exec_form() == list(packer.ENTRYPOINT)
    assert by_keyword["CMD"].exec_form() == list(packer.CMD)
    assert by_keyword["WORKDIR"].args == packer.WORKDIR
    assert by_keyword["EXPOSE"].args == str(packer.HTTP_PORT)
    copied = [i.args for i in _runtime() if i.keyword == "COPY"]
    assert copied == [f"--from=build {packer.VENV} {packer.VENV}"]


def test_the_virtualenv_is_made_and_filled_the_same_way() -> None:
    build = _runs(stages(parse(DOCKERFILE.read_text()))[0])
    assert f"python3 -m venv {packer.VENV}" in build
    assert f"{packer.VENV}/bin/pip install /wheels/flinkops-*.whl" in build
    assert f"{packer.VENV}/bin/python -m compileall -q {packer.VENV}/lib" in build


def test_the_packer_builds_the_wheel_from_what_the_build_context_admits() -> None:
    files = packer._context_files(REPO)
    assert {f.parts[0] for f in files} == admitted_paths()
    assert not [f for f in files if "__pycache__" in f.parts or f.suffix == ".pyc"]


def test_the_image_name_is_what_the_charts_default_image_resolves_to() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    default = f"{values['image']['repository']}:{values['image']['tag'] or chart['appVersion']}"
    # A short name without a registry or path is a Docker Hub library image to the kubelet and containerd.
    assert packer.operator_image_names() == (f"docker.io/library/{default}",)
    assert chart["appVersion"] == flinkops.__version__


def test_the_base_layer_leaves_out_what_debians_slim_images_leave_out() -> None:
    assert packer._slim("usr/share/man/man1/ls.1.gz")
    assert packer._slim("usr/share/locale/de/LC_MESSAGES/apt.mo")
    assert packer._slim("usr/share/doc/python3.11/changelog.Debian.gz")
    assert not packer._slim("usr/share/doc/python3.11/copyright")
    assert not packer._slim("usr/share/doc/python3.11")
    assert not packer._slim("usr/lib/python3.11/os.py")


def test_the_recipe_names_no_host_to_download_from() -> None:
    assert not re.search(r"https?://", DOCKERFILE.read_text())


def test_flinkops_version_prints_the_version_the_image_is_tagged_with() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"flinkops {flinkops.__version__}"
    assert packer.operator_image_names()[0].endswith(f":{flinkops.__version__}")
