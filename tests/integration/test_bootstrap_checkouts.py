"""Two checkouts on one machine, each installed with ``scripts/bootstrap.sh`` (``make install``): each runs its
own code, both share the cached dependencies, and deleting one leaves the other working. The cache is the
machine's own (``FLINKOPS_CACHE`` or ~/.cache/flinkops), warm because ``make test`` installs first, so each
install here takes seconds; no Flink is started."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
# A fresh checkout's install on a warm cache takes a few seconds; a rebuild of the dependencies takes minutes.
WARM_INSTALL_LIMIT = 60.0


def _checkout(parent: Path, name: str) -> Path:
    """A copy of this checkout's sources (what a clone holds that the install reads), marked with its name."""
    root = parent / name
    root.mkdir()
    for file in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / file, root / file)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for directory in ("scripts", "src"):
        shutil.copytree(ROOT / directory, root / directory, ignore=ignore)
    (root / "src" / "flinkops" / "_checkout_name.py").write_text(f"NAME = {name!r}\n")
    return root


def _install(root: Path) -> float:
    started = time.monotonic()
    done = subprocess.run(
        ["bash", "scripts/bootstrap.sh"], cwd=root, capture_output=True, text=True, timeout=1800, env=os.environ
    )
    assert done.returncode == 0, f"bootstrap failed in {root}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return time.monotonic() - started


def _runs(root: Path) -> str:
    """Which checkout's code the checkout's own environment runs; its CLI and test tools must work too."""
    venv = root / ".venv" / "bin"
    cli = subprocess.run([str(venv / "flinkops"), "--help"], capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stderr
    tool = subprocess.run([str(venv / "pytest"), "--version"], capture_output=True, text=True, timeout=120)
    assert tool.returncode == 0, tool.stderr
    probe = "import flinkops, flinkops._checkout_name as c, pyflink; print(c.NAME, flinkops.__file__)"
    seen = subprocess.run([str(venv / "python"), "-c", probe], capture_output=True, text=True, timeout=120)
    assert seen.returncode == 0, seen.stderr
    name, path = seen.stdout.split()
    assert Path(path).is_relative_to(root / "src"), f"{root.name}'s environment runs {path}"
    return name


def test_two_checkouts_each_run_their_own_code_and_deleting_one_leaves_the_other_working(tmp_path: Path) -> None:
    first, second = _checkout(tmp_path, "first"), _checkout(tmp_path, "second")
    took = [_install(first), _install(second)]
    assert max(took) < WARM_INSTALL_LIMIT, f"installs took {took} s on a warm cache"

    assert _runs(first) == "first"
    assert _runs(second) == "second"

    # Installing the first again (make demo, make test do) changes nothing for the second.
    _install(first)
    assert _runs(second) == "second"

    shutil.rmtree(first)
    assert _runs(second) == "second"
