"""The Airflow environment the provider (``providers/airflow``) is developed and tested in: a real Airflow from
the package index in a virtualenv of its own, as a user's Airflow deployment would have it.

Two layers, like ``./.venv`` over ``deps-*`` (scripts/bootstrap.sh):

* a **cached environment**, ``cache_dir()/airflow-<version>-pyXY-<key>``, built once per machine: apache-airflow
  :data:`AIRFLOW_VERSION` with its ``statsd`` extra, flinkops' declared dependencies and its ``flink`` extra (read
  from pyproject.toml; never flinkops' own code), prometheus-client (the watchdog DAG's gauge), pytest and
  pytest-asyncio (the provider's trigger tests) and setuptools (editable installs build with it). ``<key>`` is a
  hash of exactly those requirements, so editing a tool setting in pyproject.toml reuses it. No constraint file is
  reachable here, so pip resolves Airflow's requirements itself; :data:`PINS` holds what had to be pinned for it
  to work (each with its reason). A few minutes and about 700 MB, once per machine;
* a **per-checkout environment**, ``<checkout>/.venv-airflow``: a small virtualenv whose ``.pth`` file puts the
  cached site-packages on its path, with this checkout's flinkops and ``providers/airflow`` installed editable
  without dependencies. The provider's dist-info (with its ``apache_airflow_provider`` entry point) lives there,
  so ``airflow providers list`` shows it and every checkout runs its own code. The cached environment's commands
  (``airflow``, ``pytest``, ...) are copied in with this interpreter on their first line. Seconds to make.

:func:`ensure_airflow` makes both (each only when missing or outdated) and returns :class:`AirflowEnvironment`.
Called by ``scripts/prefetch.py`` (``make test``) and by hand: ``python -m flinkops.dev.airflow [CHECKOUT]``.

Invariants: one builder per cached environment and one per checkout at a time (``flock``); a cached environment
counts only once its ``.complete`` marker exists (an interrupted build is redone, never used); a per-checkout
environment is remade when the cached one, either pyproject.toml or the checkout's path changed. Failures raise
:class:`~flinkops.artifacts.ArtifactError` with pip's last lines (the whole output is in ``cache_dir()/logs``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from flinkops.artifacts import ArtifactError, Progress, cache_dir, file_lock
from flinkops.artifacts.cache import run_tool, say

__all__ = [
    "AIRFLOW_VERSION",
    "CHECKOUT_VENV",
    "PINS",
    "AirflowEnvironment",
    "cached_requirements",
    "ensure_airflow",
    "main",
]

AIRFLOW_VERSION = "3.3.2"
# Pinned beyond what Airflow itself requires, each for a reason found while building (none needed so far).
PINS: tuple[str, ...] = ()
# What the provider's tests run with, and what the editable installs build with (no isolated build environment).
_TOOLS = ("pytest>=8", "pytest-asyncio>=0.23", "setuptools>=68")
# What the provider's example DAGs use beyond Airflow: the watchdog's Prometheus gauge.
_PROVIDER_EXTRAS = ("prometheus-client>=0.20",)
CHECKOUT_VENV = ".venv-airflow"
_PROVIDER_DIR = Path("providers", "airflow")
_PROVIDER_MODULE = "flinkops_airflow"
_COMPLETE = ".complete"
_STAMP = ".flinkops-stamp"


@dataclass(frozen=True)
class AirflowEnvironment:
    """The two layers made by :func:`ensure_airflow`."""

    cached: Path  # the shared environment under the cache (Airflow and the dependencies)
    venv: Path  # the checkout's ./.venv-airflow

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def airflow(self) -> Path:
        return self.venv / "bin" / "airflow"


def cached_requirements(pyproject: Path) -> list[str]:
    """What the cached environment holds: Airflow, the pins, flinkops' declared dependencies and the tools."""
    try:
        project = tomllib.loads(pyproject.read_text())["project"]
    except (OSError, tomllib.TOMLDecodeError, KeyError) as exc:
        raise ArtifactError(f"cannot read flinkops' dependencies from {pyproject}: {exc}") from exc
    # The statsd extra: the metrics the provider publishes (and the tests read on a UDP socket) go through it.
    # The flink extra: a worker whose connection targets the local runtime starts that runtime's controller, which
    # runs Flink from the apache-flink wheel of the worker's own environment (a Kubernetes target needs none).
    flink = project.get("optional-dependencies", {}).get("flink", [])
    return [
        f"apache-airflow[statsd]=={AIRFLOW_VERSION}",
        *PINS,
        *project.get("dependencies", []),
        *flink,
        *_PROVIDER_EXTRAS,
        *_TOOLS,
    ]


def ensure_airflow(
    checkout: Path, *, python: Path | None = None, progress: Progress | None = None
) -> AirflowEnvironment:
    """Make (or find up to date) the cached Airflow environment and ``checkout``'s ``.venv-airflow`` over it.
    ``python`` is the interpreter both are made with (default: the one running this, outside any virtualenv)."""
    checkout = checkout.resolve()
    interpreter = _base_interpreter(python)
    cached = _cached_environment(checkout / "pyproject.toml", interpreter, progress)
    venv = _checkout_environment(checkout, cached, interpreter, progress)
    return AirflowEnvironment(cached=cached, venv=venv)


# ------------------------------------------------------------------------------------------------ the cache


def _base_interpreter(python: Path | None) -> Path:
    """The interpreter itself, not a virtualenv's link to it (a virtualenv may be the one being rebuilt)."""
    if python is None:
        python = Path(getattr(sys, "_base_executable", sys.executable))
    resolved = Path(os.path.realpath(python))
    if not resolved.is_file():
        raise ArtifactError(f"no Python interpreter at {python}")
    return resolved


def _ask(python: Path, code: str) -> str:
    """What ``python -c code`` prints (ArtifactError when that interpreter does not run)."""
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=False, timeout=60)
    if out.returncode != 0:
        raise ArtifactError(f"{python} does not run: {out.stderr.strip()}")
    return out.stdout.strip()


def _python_tag(interpreter: Path) -> str:
    return _ask(interpreter, "import sys; print(f'py{sys.version_info[0]}{sys.version_info[1]}')")


def _cached_environment(pyproject: Path, interpreter: Path, progress: Progress | None) -> Path:
    requirements = cached_requirements(pyproject)
    key = hashlib.sha256(json.dumps(requirements).encode()).hexdigest()[:12]
    env = cache_dir() / f"airflow-{AIRFLOW_VERSION}-{_python_tag(interpreter)}-{key}"
    if (env / _COMPLETE).is_file():
        return env
    lock = env.with_name(env.name + ".lock")
    with file_lock(lock, waiting=lambda: say(progress, f"waiting for another process building {env.name}")):
        if (env / _COMPLETE).is_file():
            return env
        say(
            progress,
            f"creating {env} (once per machine: Airflow {AIRFLOW_VERSION} and flinkops' dependencies, ~340 MB, "
            "about a minute; later runs and other checkouts reuse it)",
        )
        started = time.monotonic()
        shutil.rmtree(env, ignore_errors=True)
        _run(progress, [str(interpreter), "-m", "venv", str(env)], env.parent, "airflow-venv", "creating the venv")
        (env / "requirements.txt").write_text("\n".join(requirements) + "\n")
        pip = [str(env / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "--progress-bar"]
        _run(progress, [*pip, "off", "--upgrade", "pip"], env, "airflow-pip", "upgrading pip")
        _run(
            progress,
            [*pip, "off", "-r", str(env / "requirements.txt")],
            env,
            f"airflow-{AIRFLOW_VERSION}-install",
            f"installing Airflow {AIRFLOW_VERSION} and flinkops' dependencies",
        )
        (env / _COMPLETE).write_text(f"{AIRFLOW_VERSION}\n")
        say(progress, f"created {env.name} in {time.monotonic() - started:.0f}s ({_size_mb(env)} MB)")
    return env


def _run(progress: Progress | None, argv: list[str], cwd: Path, log_name: str, what: str) -> None:
    ok, tail = run_tool(argv, cwd=cwd, env=_pip_env(), log_name=log_name, what=what, progress=progress)
    if not ok:
        raise ArtifactError(f"{what} failed {tail}")


def _pip_env() -> dict[str, str]:
    # No prompt for credentials (there is no terminal to answer it), no version check of pip itself.
    return dict(os.environ, PIP_NO_INPUT="1", PIP_DISABLE_PIP_VERSION_CHECK="1")


def _size_mb(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):  # a file removed meanwhile
                total += os.lstat(os.path.join(root, name)).st_size
    return total // (1024 * 1024)


# ------------------------------------------------------------------------------------------------ the checkout


def _purelib(python: Path) -> Path:
    return Path(_ask(python, "import sysconfig; print(sysconfig.get_path('purelib'))"))


def _stamp(checkout: Path, cached: Path) -> str:
    digests = []
    for pyproject in (checkout / "pyproject.toml", checkout / _PROVIDER_DIR / "pyproject.toml"):
        try:
            digests.append(hashlib.sha256(pyproject.read_bytes()).hexdigest())
        except OSError as exc:
            raise ArtifactError(f"cannot read {pyproject}: {exc}") from exc
    return json.dumps({"cached": str(cached), "pyprojects": digests, "checkout": str(checkout)})


def _checkout_environment(checkout: Path, cached: Path, interpreter: Path, progress: Progress | None) -> Path:
    venv = checkout / CHECKOUT_VENV
    stamp = _stamp(checkout, cached)
    tag = hashlib.sha256(str(checkout).encode()).hexdigest()[:12]
    with file_lock(cache_dir() / "locks" / f"airflow-checkout-{tag}.lock"):
        current = (venv / _STAMP).read_text() if (venv / _STAMP).is_file() else None
        if current != stamp:
            if venv.is_symlink() or (venv.exists() and not (venv / "pyvenv.cfg").is_file()):
                raise ArtifactError(f"{venv} exists and is not a virtualenv: move it away and try again")
            say(progress, f"making {venv} over {cached.name} (seconds)")
            shutil.rmtree(venv, ignore_errors=True)
            _make_checkout_venv(checkout, venv, cached, interpreter, progress)
            (venv / _STAMP).write_text(stamp)
        _verify(checkout, venv)
    return venv


def _make_checkout_venv(checkout: Path, venv: Path, cached: Path, interpreter: Path, progress: Progress | None) -> None:
    _run(
        progress,
        [str(interpreter), "-m", "venv", "--without-pip", str(venv)],
        checkout,
        "airflow-checkout-venv",
        f"creating {venv}",
    )
    own = _purelib(venv / "bin" / "python")
    shared = _purelib(cached / "bin" / "python")
    # addsitedir, not a bare path line, so the .pth files of the cached environment are processed too.
    (own / "flinkops-airflow-deps.pth").write_text(f"import site; site.addsitedir({str(shared)!r})\n")
    _link_commands(cached, venv)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
    _run(
        progress,
        [*pip, "-e", str(checkout), "-e", str(checkout / _PROVIDER_DIR)],
        checkout,
        "airflow-checkout-editable",
        f"installing this checkout's flinkops and provider into {venv} (editable)",
    )


def _link_commands(cached: Path, venv: Path) -> None:
    """The cached environment's commands, run by the checkout's interpreter (so its .pth and editable installs
    apply): a script naming the cached interpreter on its first two lines (pip writes ``#!/bin/sh`` and an
    ``exec`` line for a long path) is copied with that name replaced; anything else is linked."""
    own_python = str(venv / "bin" / "python")
    names_cached = re.compile(re.escape(str(cached / "bin" / "python")) + r"[0-9.]*")
    for tool in sorted((cached / "bin").iterdir()):
        name = tool.name
        if name.startswith(("python", "activate", "Activate")) or name == "__pycache__":
            continue
        target = venv / "bin" / name
        if target.exists():
            continue
        head = tool.read_bytes()[:2]
        if head == b"#!":
            lines = tool.read_text().splitlines(keepends=True)
            rewritten = [names_cached.sub(own_python, line) if i < 2 else line for i, line in enumerate(lines)]
            if rewritten[:2] != lines[:2]:
                target.write_text("".join(rewritten))
                target.chmod(0o755)
                continue
        target.symlink_to(tool)


_CHECK = """
import importlib.metadata, json, pathlib, sys
import flinkops, flinkops_airflow
found = [ep.value for ep in importlib.metadata.entry_points(group="apache_airflow_provider")]
print(json.dumps({"flinkops": flinkops.__file__, "provider": flinkops_airflow.__file__, "entry_points": found}))
"""


def _verify(checkout: Path, venv: Path) -> None:
    """The checkout's flinkops and provider are what the environment imports, and the entry point is there."""
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", _CHECK], capture_output=True, text=True, check=False, timeout=120
    )
    broken = f"{venv} is broken; delete it and run `make test` (or scripts/prefetch.py) again"
    if out.returncode != 0:
        raise ArtifactError(f"{broken}: {out.stderr.strip()[-2000:]}")
    found = json.loads(out.stdout.strip().splitlines()[-1])
    wanted = {
        "flinkops": checkout / "src" / "flinkops",
        "provider": checkout / _PROVIDER_DIR / "src" / _PROVIDER_MODULE,
    }
    for what, where in wanted.items():
        if Path(found[what]).resolve().parent != where:
            raise ArtifactError(f"{broken}: {what} comes from {found[what]}, not {where}")
    if f"{_PROVIDER_MODULE}:get_provider_info" not in found["entry_points"]:
        raise ArtifactError(f"{broken}: the provider's entry point is missing (found {found['entry_points']})")


def main() -> int:
    """``python -m flinkops.dev.airflow [CHECKOUT]``: make the environments and print ./.venv-airflow's path
    (progress goes to stderr)."""
    checkout = Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd()
    try:
        env = ensure_airflow(checkout, progress=lambda line: print(line, file=sys.stderr, flush=True))
    except ArtifactError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(env.venv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
