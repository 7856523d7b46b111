"""Preflight of a job's local files: what the local runtime would find missing only after a deploy, found first.

For each resource with a job, on the local target:

- ``spec.job.jarURI`` (a path, ``local://`` or ``file://``; ``/opt/flink/...`` as the official image's layout,
  ``flink.layout``) names a file that exists; remote jars (``https://``, ``s3://``) are left to the controller;
- without ``spec.job.entryClass``, that jar's manifest names the class to run (``Main-Class``), as Flink needs;
- for a PyFlink job (entry class ``PythonDriver``): the ``-py`` script, the ``-pyfs`` files and the ``-pym`` module
  (in one of the ``-pyfs`` entries) exist, and the interpreters of ``-pyclientexec``/``-pyexec`` and of
  ``python.client.executable``/``python.executable`` in ``flinkConfiguration`` can ``import pyflink``.

Each failure is a ``Problem`` with the field path (``spec.job.args[3]``) and what to do; ``plan``, ``lint`` and
``apply`` turn them into exit 2 before anything changes. The mapping of every ``/opt/flink/...`` path is returned
too, for ``plan`` and ``describe`` to show.

Called by: ``service.target.LocalTarget.local_files``. Reads files and runs the named interpreters (once each per
process); with ``fetch`` it also makes the example jars the spec names (``flink.examples``, cached).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from flinkops.api.flinkconf import PYTHON_DRIVER
from flinkops.api.models import FlinkDeployment, FlinkSessionJob
from flinkops.api.validation import resource_label
from flinkops.errors import PermanentError, Problem
from flinkops.flink.distribution import FlinkDistribution
from flinkops.flink.layout import ImageLayout, image_relative
from flinkops.provisioning.local import entry_class_of, is_python_jar, usrlib_dir
from flinkops.settings import SOURCE_DIR_ANNOTATION

__all__ = ["LocalFiles", "can_import_pyflink", "check_local_files"]

Resource = FlinkDeployment | FlinkSessionJob

_PY = ("-py", "--python")
_PYFS = ("-pyfs", "--pyFiles")
_PYM = ("-pym", "--pyModule")
_INTERPRETER_FLAGS = {"-pyclientexec": "client", "--pyClientExecutable": "client", "-pyexec": "worker",
                      "--pyExecutable": "worker"}  # fmt: skip
_INTERPRETER_KEYS = ("python.client.executable", "python.executable")
_INTERPRETER_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class LocalFiles:
    """What the preflight found for some resources: the problems, and each ``/opt/flink`` path's local file."""

    problems: tuple[Problem, ...] = ()
    #: per resource label (``FlinkDeployment/default/basic``): "written → local file (how)" lines
    mappings: tuple[tuple[str, str], ...] = ()

    def lines(self, label: str) -> list[str]:
        return [line for who, line in self.mappings if who == label]


@functools.cache
def can_import_pyflink(executable: str) -> str | None:
    """None when ``executable`` runs and can ``import pyflink``; else why not (cached per process)."""
    try:
        done = subprocess.run(
            [executable, "-c", "import pyflink"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=_INTERPRETER_TIMEOUT_S,
            check=False,
        )
    except FileNotFoundError:
        return "it does not exist"
    except PermissionError:
        return "it is not executable"
    except OSError as exc:
        return f"it cannot be run ({exc.strerror or exc})"
    except subprocess.TimeoutExpired:
        return f"`import pyflink` did not finish in {_INTERPRETER_TIMEOUT_S:.0f} s"
    if done.returncode != 0:
        last = (done.stderr.decode(errors="replace").strip().splitlines() or ["exit code " + str(done.returncode)])[-1]
        return f"it cannot import pyflink ({last})"
    return None


def check_local_files(
    resources: Sequence[Resource],
    dist: FlinkDistribution,
    *,
    fetch: bool,
    python_check: Callable[[str], str | None] = can_import_pyflink,
) -> LocalFiles:
    """Every problem with the local files of ``resources``' jobs, and the mapping of their ``/opt/flink`` paths."""
    problems: list[Problem] = []
    mappings: list[tuple[str, str]] = []
    for resource in resources:
        job = resource.spec.job
        if job is None:
            continue
        label = resource_label(resource)
        check = _Check(resource, dist, fetch, python_check)
        check.jar()
        if job.entry_class == PYTHON_DRIVER:
            check.python()
        problems += [Problem(path, message, hint, label) for path, message, hint in check.problems]
        mappings += [(label, line) for line in check.lines]
    return LocalFiles(tuple(problems), tuple(mappings))


class _Check:
    def __init__(
        self, resource: Resource, dist: FlinkDistribution, fetch: bool, python_check: Callable[[str], str | None]
    ) -> None:
        source = (resource.metadata.annotations or {}).get(SOURCE_DIR_ANNOTATION)
        self.base = Path(source) if source else Path.cwd()
        self.usrlib = usrlib_dir(resource) or self.base
        self.layout = ImageLayout(dist, self.usrlib)
        self.job = resource.spec.job
        self.config = resource.spec.flink_configuration
        self.fetch = fetch
        self.python_check = python_check
        self.problems: list[tuple[str, str, str]] = []
        self.lines: list[str] = []

    def _local(self, path: str, value: str) -> Path | None:
        """The local file ``value`` names (``/opt/flink`` mapped, relative to the YAML's directory), or None after
        recording why it cannot be had (or, without ``fetch``, for an example jar not made yet)."""
        if image_relative(value) is not None:
            try:
                mapped = self.layout.map(value, fetch=self.fetch)
            except PermanentError as exc:  # not an ArtifactError (Maven missing or offline): that is no bad input
                self.problems.append((path, str(exc), "see the README's 'official image's layout' for what maps"))
                return None
            assert mapped is not None
            self.lines.append(mapped.line())
            return mapped.path
        parsed = urllib.parse.urlparse(value)
        raw = urllib.parse.unquote(parsed.path) if parsed.scheme in ("local", "file") else value
        local = Path(raw).expanduser()
        return local if local.is_absolute() else self.base / local

    def jar(self) -> None:
        assert self.job is not None
        uri = (self.job.jar_uri or "").strip()
        if not uri or urllib.parse.urlparse(uri).scheme not in ("", "file", "local"):
            return  # none (validation says so where it matters), or remote: fetched by the controller
        if self.job.entry_class == PYTHON_DRIVER and is_python_jar(uri):
            if image_relative(uri) is not None:
                self._local("spec.job.jarURI", uri)  # shown: the distribution's own flink-python runs the job
            return
        jar = self._local("spec.job.jarURI", uri)
        if jar is None:  # a problem was recorded, or an example jar not made yet (its Main-Class is known)
            return
        if not jar.is_file():
            self.problems.append(
                (
                    "spec.job.jarURI",
                    f"{uri} is {jar} on this machine, which does not exist",
                    "build or copy the jar there, or fix jarURI (a relative path starts at the YAML's directory; "
                    "/opt/flink/usrlib/ is the YAML's directory unless the flinkops.io/usrlib annotation names "
                    "another)",
                )
            )
            return
        if not (self.job.entry_class or "").strip():
            try:
                found = entry_class_of(jar)
            except PermanentError:
                self.problems.append(
                    (
                        "spec.job.entryClass",
                        f"not set, and the jar {jar} names no Main-Class in its manifest",
                        "set spec.job.entryClass to the class with the job's main method",
                    )
                )
                return
            self.lines.append(f"entry class: {found} (the jar's Main-Class)")

    def python(self) -> None:
        assert self.job is not None
        args = list(self.job.args)
        pyfs: list[Path] = []
        for i, arg in enumerate(args[:-1]):
            value, path = args[i + 1], f"spec.job.args[{i + 1}]"
            if arg in _PY:
                self._file(path, value, "the -py script", is_dir_ok=False)
            elif arg in _PYFS:
                for entry in value.split(","):
                    found = self._file(path, entry.strip(), "a -pyfs entry", is_dir_ok=True)
                    if found is not None:
                        pyfs.append(found)
            elif arg in _INTERPRETER_FLAGS:
                self._interpreter(path, value, f"the {arg} interpreter")
        for i, arg in enumerate(args[:-1]):
            if arg in _PYM and pyfs:
                module = args[i + 1].replace(".", os.sep)
                roots = [p if p.is_dir() else p.parent for p in pyfs]
                if not any((r / f"{module}.py").is_file() or (r / module).is_dir() for r in roots):
                    self.problems.append(
                        (
                            f"spec.job.args[{i + 1}]",
                            f"module {args[i + 1]!r} is in none of the -pyfs entries ({', '.join(map(str, roots))})",
                            "add the directory holding it to -pyfs, or fix the module name",
                        )
                    )
        for key in _INTERPRETER_KEYS:
            value = str(self.config.get(key, "")).strip()
            if value:
                self._interpreter(f'spec.flinkConfiguration["{key}"]', value, key)

    def _file(self, path: str, value: str, what: str, *, is_dir_ok: bool) -> Path | None:
        local = self._local(path, value)
        if local is None:
            return None
        if local.is_file() or (is_dir_ok and local.is_dir()):
            return local
        self.problems.append(
            (
                path,
                f"{what} {value} is {local} on this machine, which does not exist",
                "put it there (relative paths start at the YAML's directory; /opt/flink/usrlib/ is the usrlib "
                "directory), or fix the path",
            )
        )
        return None

    def _interpreter(self, path: str, value: str, what: str) -> None:
        executable = value if os.sep in value else (shutil.which(value) or value)
        if os.sep in executable and not os.path.isabs(executable):
            executable = str(self.base / executable)
        why = self.python_check(executable)
        if why is not None:
            self.problems.append(
                (
                    path,
                    f"{what} {value}: {why}",
                    "name a Python interpreter that has apache-flink installed (pip install apache-flink), or drop "
                    "it: the local runtime runs PyFlink on the interpreter flinkops itself runs on",
                )
            )
