"""What a request asks of Flink and whether its caller may: pure functions, no I/O.

* ``unsafe_path``: the raw request path (as sent, before any decoding) is refused when it could mean something
  else once decoded: encoded dots, slashes or backslashes (``%2e``, ``%2f``, ``%5c``), double encoding (``%25``),
  NUL, dot segments, empty segments, backslashes. Flink's REST paths never need any of them; the CVE-2020-17518
  (``/jars/upload`` writing outside its directory) and CVE-2020-17519 (``/jobmanager/logs/..%252f..``) probes all
  do.
* ``classify``: the action a Flink REST call is (``view``, ``operate``, ``admin``, ``jars``).
* ``decide``: the caller's subjects and the role bindings give a role for the deployment; the action needs at
  least ``viewer`` (view), ``operator`` (savepoint, stop, cancel, rescale, checkpoint) or ``admin`` (everything
  else that changes something); uploading or running a jar also needs a ``jars`` rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from flinkops.gateway.config import ROLES, GatewayConfig, Role

__all__ = ["Action", "Decision", "classify", "decide", "role_of", "unsafe_path"]

_ENCODED = re.compile(r"%(2e|2f|5c|25|00)", re.IGNORECASE)


def unsafe_path(raw_path: str) -> str | None:
    """Why ``raw_path`` (the path part of the request target, undecoded) is refused, or None when it is safe."""
    if _ENCODED.search(raw_path):
        return "an encoded dot, slash, backslash, percent or NUL in the path"
    if "\\" in raw_path or "\x00" in raw_path:
        return "a backslash or NUL in the path"
    segments = raw_path.split("/")[1:]
    if any(s in (".", "..") for s in segments):
        return "a dot segment in the path"
    if any(s == "" for s in segments[:-1]):
        return "an empty segment in the path"
    return None


class Action(StrEnum):
    VIEW = "view"
    OPERATE = "operate"
    ADMIN = "admin"
    JARS = "jars"


_NEEDS: dict[Action, Role] = {Action.VIEW: "viewer", Action.OPERATE: "operator", Action.ADMIN: "admin"}
_JOB = r"/jobs/[0-9a-f]{32}"
_OPERATE = [
    ("POST", re.compile(_JOB + r"/savepoints/?")),  # trigger a savepoint
    ("POST", re.compile(_JOB + r"/stop/?")),  # stop with a savepoint
    ("POST", re.compile(_JOB + r"/checkpoints/?")),  # trigger a checkpoint
    ("PATCH", re.compile(_JOB + r"/?")),  # cancel
    ("PUT", re.compile(_JOB + r"/resource-requirements/?")),  # rescale (adaptive scheduler)
    ("POST", re.compile(_JOB + r"/rescaling/?")),
]
_JAR_CALLS = [
    ("POST", re.compile(r"/jars/upload/?")),
    ("POST", re.compile(r"/jars/[^/]+/run/?")),
    ("POST", re.compile(r"/jobs/?")),  # submit a job graph with its jars
    ("DELETE", re.compile(r"/jars/[^/]+/?")),
]
#: GETs that change something (Flink's legacy cancel): never a viewer's.
_CHANGING_GETS = [re.compile(_JOB + r"/yarn-cancel/?"), re.compile(_JOB + r"/yarn-stop/?")]


def classify(method: str, path: str) -> Action:
    """The action of Flink REST call ``method path`` (``path`` below the deployment's prefix, e.g. ``/jobs``)."""
    method = method.upper()
    if method in ("GET", "HEAD", "OPTIONS"):
        if any(p.fullmatch(path) for p in _CHANGING_GETS):
            return Action.OPERATE
        return Action.VIEW
    if any(m == method and p.fullmatch(path) for m, p in _JAR_CALLS):
        return Action.JARS
    if any(m == method and p.fullmatch(path) for m, p in _OPERATE):
        return Action.OPERATE
    return Action.ADMIN


def role_of(config: GatewayConfig, subjects: frozenset[str], namespace: str, name: str) -> Role | None:
    """The highest role any binding gives ``subjects`` on deployment ``namespace/name``."""
    best: Role | None = None
    for binding in config.roles:
        covered = binding.covers(namespace, name) and binding.names(subjects)
        if covered and (best is None or ROLES.index(binding.role) > ROLES.index(best)):
            best = binding.role
    return best


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    role: Role | None = None


def decide(config: GatewayConfig, subjects: frozenset[str], namespace: str, name: str, action: Action) -> Decision:
    role = role_of(config, subjects, namespace, name)
    if role is None:
        return Decision(False, f"no role on {namespace}/{name}")
    if action is Action.JARS:
        if not any(r.covers(namespace, name) and r.names(subjects) for r in config.jars):
            return Decision(False, "uploading or running jars needs a jars rule (admins too)", role)
        return Decision(True, "a jars rule allows it", role)
    needed = _NEEDS[action]
    if ROLES.index(role) < ROLES.index(needed):
        return Decision(False, f"{action.value} needs {needed}; the caller is {role}", role)
    return Decision(True, f"{role} may {action.value}", role)
