"""User input: YAML files read into resources, and the whole batch checked the way ``apply`` checks it.

``check`` is the one place input is validated before anything is written: each resource on its own, as an update
of the stored one, against the rest of the batch and the store, and the savepoint each would start from (which
must exist now: finding out after the running job was stopped would be too late). Every problem is reported at
once, with its field path, as ``InvalidInput``; ``apply`` and ``plan`` both go through it.

Called by: ``service.apply``, ``service.plan``, the CLI (``-f FILE`` of apply, plan, lint, delete).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

from flinkops.api.loader import MAX_INPUT_BYTES, decode_input, load_documents, load_object
from flinkops.api.models import FlinkDeployment, FlinkSessionJob
from flinkops.api.secrets import KUBERNETES_SCHEMES, LOCAL_SCHEMES
from flinkops.api.validation import resource_label, validate_batch
from flinkops.errors import FlinkopsError, InvalidInput, PermanentError, Problem, TemporaryError
from flinkops.ports import ResourceStore
from flinkops.service.config import snapshot_store
from flinkops.service.target import Target
from flinkops.settings import SOURCE_DIR_ANNOTATION, USRLIB_ANNOTATION

__all__ = [
    "Existing",
    "Resource",
    "check",
    "load_objects",
    "load_text",
    "read_files",
    "restore_path_problems",
    "usrlib_dir",
    "validate",
]

Resource = FlinkDeployment | FlinkSessionJob
#: Stored resources by (kind, namespace, name).
Existing = Mapping[tuple[str, str, str], Resource]


def _key(resource: Resource) -> tuple[str, str, str]:
    return (resource.kind, resource.metadata.namespace, resource.metadata.name)


def load_text(target: Target, text: str, source: str, base: Path, *, usrlib: Path | None = None) -> list[Resource]:
    """The resources in one YAML text (``InvalidInput`` with every problem). Locally each remembers ``base``, the
    directory relative paths in its job (jar, Python script) resolve against, and the directory the image's
    ``/opt/flink/usrlib/`` means: ``usrlib`` (``--usrlib``, absolute) over the ``flinkops.io/usrlib`` annotation
    (relative to ``base``) over ``base`` itself. A Kubernetes operator could not use a directory of this
    machine."""
    return _placed(target, load_documents(text, source), base, usrlib)


def load_objects(target: Target, documents: Sequence[object], source: str, base: Path) -> list[Resource]:
    """The resources of already-parsed documents (one resource each, as a front end edited them), checked as
    ``load_text`` checks a file's (``InvalidInput`` with every problem; ``source#n`` names the document)."""
    resources: list[Resource] = []
    problems: list[Problem] = []
    for index, document in enumerate(documents, start=1):
        try:
            resources.append(load_object(document, f"{source}#{index}"))
        except InvalidInput as exc:
            problems.extend(exc.problems)
    if problems:
        raise InvalidInput(problems)
    return _placed(target, resources, base, None)


def _placed(target: Target, resources: Sequence[Resource], base: Path, usrlib: Path | None) -> list[Resource]:
    """Locally each resource remembers ``base`` and its ``usrlib`` (see ``load_text``)."""
    if not target.local:
        return list(resources)
    annotated: list[Resource] = []
    for resource in resources:
        annotations = dict(resource.metadata.annotations or {})
        annotations.setdefault(SOURCE_DIR_ANNOTATION, str(base))
        annotated_usrlib = annotations.get(USRLIB_ANNOTATION)
        if usrlib is not None:
            annotations[USRLIB_ANNOTATION] = str(usrlib)
        elif annotated_usrlib:  # the image's /opt/flink/usrlib/ here: relative to the YAML, like its other paths
            annotations[USRLIB_ANNOTATION] = str((base / Path(annotated_usrlib).expanduser()).resolve())
        meta = resource.metadata.model_copy(update={"annotations": annotations})
        annotated.append(resource.model_copy(update={"metadata": meta}))
    return annotated


def _read_stdin(stdin: TextIO | None) -> str:
    """Standard input as text, reading at most one byte more than the loader accepts (so an endless stream or a
    huge one is refused without being held in memory)."""
    stream = stdin or sys.stdin
    binary = getattr(stream, "buffer", None)
    if binary is not None:
        return decode_input(binary.read(MAX_INPUT_BYTES + 1), "<stdin>")
    return stream.read(MAX_INPUT_BYTES + 1)


def _read_file(path: Path) -> str:
    """A file's text, reading at most one byte more than the loader accepts; ``InvalidInput`` when it is too
    large or not text (``decode_input``)."""
    with path.open("rb") as f:
        data = f.read(MAX_INPUT_BYTES + 1)
    return decode_input(data, str(path))


def usrlib_dir(target: Target, given: Path | None) -> Path | None:
    """The directory ``--usrlib`` names, absolute; ``InvalidInput`` naming the flag when it is no directory, or
    when the target is Kubernetes (where ``/opt/flink/usrlib/`` is the image's own)."""
    if given is None:
        return None
    if not target.local:
        problem = Problem(
            "--usrlib",
            "names a directory of this machine, but the target is Kubernetes: there /opt/flink/usrlib/ is the "
            "image's own directory",
            "build the job's files into the image (or mount them there) and leave --usrlib out",
        )
        raise InvalidInput([problem])
    chosen = given.expanduser().resolve()
    if not chosen.is_dir():
        what = "is not a directory" if chosen.exists() else "does not exist"
        problem = Problem(
            "--usrlib",
            f"{given} {what}",
            "give the directory holding the files the YAML names as local:///opt/flink/usrlib/..., e.g. "
            "--usrlib ./jobs",
        )
        raise InvalidInput([problem])
    return chosen


def read_files(
    target: Target, paths: Sequence[Path], stdin: TextIO | None = None, *, usrlib: Path | None = None
) -> list[Resource]:
    """Every resource in ``paths`` (``-`` reads ``stdin``); ``InvalidInput`` listing the problems of all files,
    or saying there was nothing in them. ``usrlib`` (``--usrlib``) is the image's ``/opt/flink/usrlib/`` for
    every resource read (``load_text``); a directory that does not exist is ``InvalidInput`` naming the flag."""
    chosen = usrlib_dir(target, usrlib)
    problems: list[Problem] = []
    resources: list[Resource] = []
    for path in paths:
        try:
            if str(path) == "-":
                text, source, base = _read_stdin(stdin), "<stdin>", Path.cwd()
            else:
                text, source, base = _read_file(path), str(path), path.resolve().parent
        except OSError as exc:
            problems.append(Problem(path=str(path), message=f"cannot read file: {exc.strerror}"))
            continue
        except InvalidInput as exc:
            problems.extend(exc.problems)
            continue
        try:
            resources.extend(load_text(target, text, source, base, usrlib=chosen))
        except InvalidInput as exc:
            problems.extend(exc.problems)
    if problems:
        raise InvalidInput(problems)
    if not resources:
        raise InvalidInput([Problem(path="-f", message="no resources found in the given file(s)")])
    return resources


def check(
    target: Target, resources: Sequence[Resource], store: ResourceStore | None = None
) -> dict[tuple[str, str, str], Resource]:
    """Validate ``resources`` as ``apply`` would; raise ``InvalidInput`` listing every problem. Returns the
    stored resources by (kind, namespace, name)."""
    store = store or target.store()
    existing = {_key(r): r for r in store.list_resources()}
    problems = _problems(target, resources, existing)
    if problems:
        raise InvalidInput(problems)
    return existing


def validate(target: Target, resources: Sequence[Resource]) -> list[Problem]:
    """What ``apply`` would reject in ``resources``, returned rather than raised (for ``lint``): what ``check``
    finds, and when that is nothing, the preflight of the jobs' local files (``Target.local_files``, without
    making example jars). When the store is out of reach (a Kubernetes target whose API server is not), the input
    is checked on its own."""
    try:
        existing = {_key(r): r for r in target.store().list_resources()}
    except InvalidInput:
        raise
    except FlinkopsError:
        existing = {}
    problems = _problems(target, resources, existing)
    if problems:
        return problems
    return list(target.local_files(resources, fetch=False).problems)  # a missing jar or script, no PyFlink


def _problems(target: Target, resources: Sequence[Resource], existing: Existing) -> list[Problem]:
    schemes = LOCAL_SCHEMES if target.local else KUBERNETES_SCHEMES
    problems = validate_batch(resources, existing, default_state_dirs=target.local, secret_schemes=schemes)
    problems.extend(restore_path_problems(target, resources, existing))
    return problems


def restore_path_problems(target: Target, resources: Sequence[Resource], existing: Existing) -> list[Problem]:
    """A savepoint a spec would start from (on a first deployment, or a savepoint redeploy) must exist now."""
    problems: list[Problem] = []
    for resource in resources:
        job = resource.spec.job
        path = (job.initial_savepoint_path or "").strip() if job is not None else ""
        if job is None or not path:
            continue
        old = existing.get(_key(resource))
        old_job = old.spec.job if old is not None else None
        redeploy = old_job is not None and job.savepoint_redeploy_nonce != old_job.savepoint_redeploy_nonce
        if old is not None and not redeploy:
            continue  # only read on a first deployment or a savepoint redeploy
        try:
            present = snapshot_store(target, resource).exists(path)
        except InvalidInput:
            present = False
        except (TemporaryError, PermanentError):
            continue  # storage out of reach from here now (or unsupported); the controller checks before it acts
        if not present:
            problems.append(
                Problem(
                    path="spec.job.initialSavepointPath",
                    message=f"{path} is not a completed savepoint or checkpoint (no _metadata found there)",
                    hint="give the directory of a savepoint or checkpoint; `flinkops snapshots NAME` lists them",
                    source=resource_label(resource),
                )
            )
    return problems
