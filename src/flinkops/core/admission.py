"""The admission webhook's verdict: an ``admission.k8s.io/v1`` AdmissionReview in, its response out.

``review(body, existing)`` decides for one FlinkDeployment or FlinkSessionJob that the API server is about to
store. It denies with every problem and its field path what ``flinkops apply`` would reject (``api.loader`` for
the shape, ``api.validation.validate_batch`` for the rules: the same functions the CLI runs) and what ``flinkops
lint`` reports as an error (a literal secret, ...); lint warnings come back as admission ``warnings``, which
``kubectl`` prints. ``existing`` looks up a stored FlinkDeployment (a GET to the API server: standby replicas
have no cache), so a session job aimed at an application cluster is refused as ``apply`` refuses it.

Always allowed, whatever the spec: a DELETE (the webhook configuration does not even send those), a canary
resource (it has no real spec), an UPDATE that leaves the spec as it is (the operator's finalizer and annotation
writes, labels: an object stored before the webhook existed must still be deletable and relabelable) and an
object already being deleted. What this cannot check without I/O (that a savepoint to restore from exists) the
controller checks before it acts.

``mutate(body)`` is the reference operator's one defaulting webhook: a FlinkSessionJob gets the label
``target.session: <spec.deploymentName>`` (so ``kubectl get flinksessionjobs -l target.session=NAME`` lists a
cluster's jobs) as a JSONPatch; it never denies (that is ``review``'s job) and patches nothing else.

Called by: ``wiring.webhook`` (the HTTPS server in the operator process). Pure: no I/O, the clock is not read.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flinkops.api.loader import Resource, load_object
from flinkops.api.models import FlinkSessionJob, is_canary_document
from flinkops.api.secrets import KUBERNETES_SCHEMES
from flinkops.api.validation import validate_batch
from flinkops.core.lint import lint
from flinkops.errors import InvalidInput, Problem

__all__ = ["KINDS", "MAX_WARNING_CHARS", "SESSION_TARGET_LABEL", "Malformed", "Verdict", "mutate", "review"]

API_VERSION = "admission.k8s.io/v1"
KINDS = ("FlinkDeployment", "FlinkSessionJob")
#: The API server may cut a longer warning (and drops warnings past 4 KiB in all): keep each readable whole.
MAX_WARNING_CHARS = 256
#: The label the reference operator's mutator puts on a FlinkSessionJob: the session cluster it runs on.
SESSION_TARGET_LABEL = "target.session"
_LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?")
#: Lookup of a stored resource by (kind, namespace, name); None when there is none (or no cache).
Lookup = Callable[[tuple[str, str, str]], Resource | None]


class Malformed(ValueError):
    """The body is no AdmissionReview this webhook can answer (no request uid to answer to): HTTP 400."""


@dataclass(frozen=True)
class Verdict:
    """The answer to one review: ``allowed``, the problems that deny it, the warnings that go with it."""

    uid: str
    allowed: bool
    problems: tuple[Problem, ...] = ()
    warnings: tuple[str, ...] = field(default_factory=tuple)
    #: JSON Patch operations on the object (the mutating webhook's answer); empty: unchanged
    patch: tuple[dict[str, Any], ...] = ()

    @property
    def message(self) -> str:
        if not self.problems:
            return ""
        head = f"{len(self.problems)} problem(s), as `flinkops lint` reports them: "
        return head + "; ".join(_problem_text(p) for p in self.problems)

    def response(self) -> dict[str, Any]:
        """The AdmissionReview the API server expects back."""
        answer: dict[str, Any] = {"uid": self.uid, "allowed": self.allowed}
        if not self.allowed:
            answer["status"] = {"code": 422, "reason": "Invalid", "message": self.message}
        if self.warnings:
            answer["warnings"] = list(self.warnings)
        if self.patch:
            answer["patchType"] = "JSONPatch"
            answer["patch"] = base64.b64encode(json.dumps(list(self.patch)).encode()).decode()
        return {"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": answer}


def _problem_text(problem: Problem) -> str:
    text = f"{problem.path}: {problem.message}"
    return f"{text} (fix: {problem.hint})" if problem.hint else text


def _clip(text: str) -> str:
    return text if len(text) <= MAX_WARNING_CHARS else text[: MAX_WARNING_CHARS - 3] + "..."


def _request(body: bytes | str | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(body, bytes | str):
        try:
            body = json.loads(body)
        except ValueError as exc:
            raise Malformed(f"the body is not JSON: {exc}") from exc
    if not isinstance(body, Mapping) or body.get("kind") != "AdmissionReview":
        raise Malformed("the body is not an AdmissionReview")
    if body.get("apiVersion") != API_VERSION:
        raise Malformed(f"apiVersion {body.get('apiVersion')!r} is not {API_VERSION} (set admissionReviewVersions)")
    request = body.get("request")
    if not isinstance(request, Mapping) or not isinstance(request.get("uid"), str) or not request["uid"]:
        raise Malformed("the AdmissionReview has no request.uid")
    return request


def _kind(request: Mapping[str, Any]) -> Any:
    """The kind the request is about (``request.kind.kind``); None when it has none."""
    kind = request.get("kind")
    return kind.get("kind") if isinstance(kind, Mapping) else None


def _as_resource(obj: Mapping[str, Any], request: Mapping[str, Any]) -> Resource:
    """The object the API server would store, read by the models (``InvalidInput`` with paths when it does not
    fit). Metadata the API server owns is dropped; a namespace or name it has not filled in yet is taken from
    the request (a ``generateName`` object is validated under its prefix)."""
    data = dict(obj)
    meta = dict(data.get("metadata") or {})
    meta.pop("managedFields", None)
    if not meta.get("namespace") and request.get("namespace"):
        meta["namespace"] = request["namespace"]
    if not meta.get("name"):
        meta["name"] = request.get("name") or (str(meta.get("generateName") or "").rstrip("-") or "unnamed")
    data["metadata"] = meta
    return load_object(data, "")


def review(body: bytes | str | Mapping[str, Any], existing: Lookup | None = None) -> Verdict:
    """The verdict on one AdmissionReview (``Malformed`` when it is none)."""
    request = _request(body)
    uid = str(request["uid"])
    operation = request.get("operation")
    obj = request.get("object")
    if operation not in ("CREATE", "UPDATE") or _kind(request) not in KINDS or not isinstance(obj, Mapping):
        return Verdict(uid, True)
    if is_canary_document(obj) or (obj.get("metadata") or {}).get("deletionTimestamp"):
        return Verdict(uid, True)
    old_obj = request.get("oldObject")
    if operation == "UPDATE" and isinstance(old_obj, Mapping) and old_obj.get("spec") == obj.get("spec"):
        return Verdict(uid, True)
    try:
        resource = _as_resource(obj, request)
    except InvalidInput as exc:
        return Verdict(uid, False, tuple(exc.problems))
    stored: dict[tuple[str, str, str], Resource] = {}
    if operation == "UPDATE" and isinstance(old_obj, Mapping):
        # An old object the models cannot read was stored before its rules existed: the new spec stands alone.
        with contextlib.suppress(InvalidInput):
            stored[(resource.kind, resource.metadata.namespace, resource.metadata.name)] = _as_resource(
                old_obj, request
            )
    if existing is not None and isinstance(resource, FlinkSessionJob):
        cluster_key = ("FlinkDeployment", resource.metadata.namespace, resource.spec.deployment_name)
        cluster = existing(cluster_key)
        if cluster is not None:
            stored[cluster_key] = cluster
    problems = validate_batch([resource], stored, secret_schemes=KUBERNETES_SCHEMES)
    findings = lint(resource)
    # A lint error at a path validation already refused says the same thing twice (FO006 and the savepoint rule).
    refused = {p.path for p in problems}
    problems += [
        Problem(f.path, f"{f.rule_id} {f.message}", f.fix)
        for f in findings
        if f.severity == "error" and f.path not in refused
    ]
    warnings = tuple(_clip(f"{f.rule_id} {f.path}: {f.message}") for f in findings if f.severity == "warning")
    return Verdict(uid, not problems, tuple(problems), warnings)


def mutate(body: bytes | str | Mapping[str, Any]) -> Verdict:
    """The defaulting answer to one AdmissionReview (``Malformed`` when it is none): always allowed; a
    FlinkSessionJob whose ``target.session`` label is not its ``spec.deploymentName`` gets it set."""
    request = _request(body)
    uid = str(request["uid"])
    obj = request.get("object")
    if (
        request.get("operation") not in ("CREATE", "UPDATE")
        or _kind(request) != "FlinkSessionJob"
        or not isinstance(obj, Mapping)
    ):
        return Verdict(uid, True)
    target = (obj.get("spec") or {}).get("deploymentName") if isinstance(obj.get("spec"), Mapping) else None
    if not isinstance(target, str) or not target or not _LABEL_VALUE.fullmatch(target):
        return Verdict(uid, True)  # no usable name: the validating webhook says what is wrong with it
    metadata = obj.get("metadata")
    labels = metadata.get("labels") if isinstance(metadata, Mapping) else None
    if isinstance(labels, Mapping) and labels.get(SESSION_TARGET_LABEL) == target:
        return Verdict(uid, True)
    if isinstance(labels, Mapping):
        op: dict[str, Any] = {"op": "add", "path": f"/metadata/labels/{SESSION_TARGET_LABEL}", "value": target}
    else:
        op = {"op": "add", "path": "/metadata/labels", "value": {SESSION_TARGET_LABEL: target}}
    return Verdict(uid, True, patch=(op,))
