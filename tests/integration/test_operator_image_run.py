"""The operator image, built for real and run: flinkops.dev.node.operator_image packs it with no registry and no
container daemon (cached; scripts/prefetch.py builds it before the suite), and runc runs its entrypoint from an
unpacked bundle, as the image's non-root user, under the chart's restrictions (read-only root filesystem, a tmpfs
at /tmp, no capabilities) and in a network namespace of its own (support.ocirun). No dev node is needed.

What a user relies on: `flinkops --version` and `flinkops operator --help` work in the image as uid 10001; the
image's Python is Debian's 3.11 with no Flink; the default command (`operator run`) without a cluster exits 2 with
the reason, not a traceback; nothing in the image is writable but /tmp. The recipe itself is compared with
deploy/docker/Dockerfile in tests/unit/test_operator_image_recipe.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import flinkops
from flinkops.dev.node.image import BuiltImage
from flinkops.dev.node.operator_image import OPERATOR_UID, VENV, operator_image
from support.ocirun import Bundle, unpack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def image() -> BuiltImage:
    return operator_image(progress=lambda message: print(f"  [operator image] {message}", flush=True))


@pytest.fixture(scope="module")
def bundle(image: BuiltImage, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bundle]:
    directory = tmp_path_factory.mktemp("operator-image")
    config = unpack(image.archive, directory / "rootfs")
    made = Bundle(directory, config)
    yield made
    assert made.leftovers() == [], "runc still lists containers of this test"


def test_flinkops_version_runs_in_the_image_as_the_non_root_user(bundle: Bundle) -> None:
    done = bundle.run(["--version"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"flinkops {flinkops.__version__}"
    assert bundle.image["config"]["User"] == f"{OPERATOR_UID}:{OPERATOR_UID}"


def test_flinkops_operator_help_runs_in_the_image(bundle: Bundle) -> None:
    done = bundle.run(["operator", "--help"])
    assert done.returncode == 0, done.stderr
    assert "run" in done.stdout and "Kubernetes operator" in done.stdout
    run_help = bundle.run(["operator", "run", "--help"])
    assert run_help.returncode == 0, run_help.stderr
    for option in ("--leader-election", "--lease-name", "--http-port", "--rest-address"):
        assert option in run_help.stdout, option


_PROBE = """
import importlib.util, json, os, sys
def writable(path):
    try:
        with open(os.path.join(path, ".probe"), "w"):
            pass
        return True
    except OSError:
        return False
print(json.dumps({
    "uid": os.getuid(), "gid": os.getgid(), "python": list(sys.version_info[:2]), "executable": sys.executable,
    "prefix": sys.prefix, "pyflink": importlib.util.find_spec("pyflink") is not None,
    "writable": {p: writable(p) for p in ("/", "/opt/flinkops", "/etc", "/tmp")},
}))
"""


def test_the_image_has_debians_python_311_no_flink_and_only_tmp_writable(bundle: Bundle) -> None:
    done = bundle.run(["-c", _PROBE], entrypoint=[f"{VENV}/bin/python"])
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert (seen["uid"], seen["gid"]) == (OPERATOR_UID, OPERATOR_UID)
    assert seen["python"] == [3, 11] and seen["prefix"] == VENV
    # The virtualenv's interpreter is Debian's (a link to /usr/bin/python3.11), not one copied from elsewhere.
    assert Path(bundle.rootfs / "usr" / "bin" / "python3.11").is_file()
    assert (bundle.rootfs / VENV.strip("/") / "pyvenv.cfg").read_text().count("home = /usr/bin") == 1
    assert seen["pyflink"] is False
    assert seen["writable"] == {"/": False, "/opt/flinkops": False, "/etc": False, "/tmp": True}


def test_the_default_command_without_a_cluster_exits_2_with_the_reason(bundle: Bundle) -> None:
    """``operator run`` (the image's CMD) outside a pod and with no kubeconfig: bad input, said plainly."""
    done = bundle.run()
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "kubeconfig" in done.stderr and "Traceback" not in done.stderr


def test_the_image_is_cached_by_its_inputs(image: BuiltImage) -> None:
    again = operator_image()
    assert (again.archive, again.digest) == (image.archive, image.digest)
    assert image.names == (f"docker.io/library/flinkops:{flinkops.__version__}",)
