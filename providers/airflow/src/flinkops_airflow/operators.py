"""``FlinkDeploymentOperator``: run a Flink job as a task and succeed or fail with the job itself;
``FlinkSavepointOperator``: take a savepoint of a running job.

What the task does, in order:

1. reads its resource from ``application_file`` (a YAML file found like any template, rendered with Jinja) or
   ``body`` (a dict), sets ``name`` and ``namespace`` when given (both templated, so each DAG run can have its own
   cluster: ``name="conversions-{{ ts_nodash | lower }}"``), and validates it exactly as ``flinkops apply``
   does: invalid input fails the task at once with every problem and its field path, and creates nothing;
2. **reattaches** when the resource is there already with the same spec (a retried task, a worker that died):
   a job still running is waited for, not submitted again; one that finished gives its result again; one that
   FAILED is deleted and run again (that is what a retry is for). A different spec is applied as an update (the
   stored spec's savepoint and checkpoint trigger nonces, set by a snapshot asked for meanwhile, are kept);
3. applies it, and records the Flink UI's address (the task's "Flink UI" button) once the JobManager answers;
4. waits, deferred by default (``FlinkDeploymentTrigger`` in the triggerer, no worker slot held), for the real
   outcome: ``wait_until="finished"`` (a batch job: FINISHED succeeds; FAILED fails the task with Flink's
   root-cause exception) or ``"stable"`` (a streaming job running and judged stable). A deferred task that
   succeeds is ended by the trigger (steps 5 and 6 done there), without starting again in a worker;
5. deletes the resource per ``delete_on_termination`` once its job ended (``on_success``: the default, a failed
   one stays for ``flinkops describe``; ``always``; ``never``); a streaming job that reached ``stable`` keeps
   running. The processes of an ended job are released by flinkops at its end either way;
6. returns (XCom) the outcome: job id, end state, duration, accumulators, last savepoint, runs.

``on_kill`` (the task killed while it runs in a worker; the trigger does the same while deferred) deletes the
resource, after a savepoint when ``savepoint_on_kill``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator, Context
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from flinkops.api.loader import parse_documents
from flinkops.errors import FlinkopsError, InvalidInput, NotFound
from flinkops.ports import ResourceKey
from flinkops.service.outcomes import JobOutcome, WaitUntil, outcome, wait_until_of
from flinkops_airflow.hooks import FlinkopsHook, Resource
from flinkops_airflow.links import FLINK_UI_XCOM, FlinkUILink
from flinkops_airflow.triggers import FlinkDeploymentTrigger

__all__ = ["DELETE_ON_TERMINATION", "FlinkDeploymentOperator", "FlinkSavepointOperator"]

DELETE_ON_TERMINATION = ("on_success", "always", "never")
RESOURCE_XCOM = "flinkops_resource"


#: Set on a stored spec by a request to take a snapshot now (``flinkops savepoint``, ``FlinkSavepointOperator``),
#: not by whoever wrote the task's file: a file that leaves them out does not change the spec, and applying it must
#: not clear them (the next request would repeat a nonce the status already answered).
_REQUEST_NONCES = ("savepoint_trigger_nonce", "checkpoint_trigger_nonce")


def _with_requests_of(existing: Resource, resource: Resource) -> Resource:
    """``resource`` with the snapshot-request nonces of the stored ``existing`` where it has none of its own."""
    old, new = existing.spec.job, resource.spec.job
    if old is None or new is None:
        return resource
    kept = {f: getattr(old, f) for f in _REQUEST_NONCES if getattr(new, f) is None and getattr(old, f) is not None}
    if not kept:
        return resource
    spec = resource.spec.model_copy(update={"job": new.model_copy(update=kept)})
    return resource.model_copy(update={"spec": spec})


def _problems(exc: InvalidInput) -> str:
    return "; ".join(f"{p.path}: {p.message}" + (f" ({p.hint})" if p.hint else "") for p in exc.problems)


class FlinkDeploymentOperator(BaseOperator):
    """Run the FlinkDeployment (or FlinkSessionJob) in ``application_file`` or ``body`` through flinkops and
    wait for its job's real outcome. See the module docstring for each step."""

    template_fields: Sequence[str] = ("application_file", "body", "name", "namespace")
    template_ext: Sequence[str] = (".yaml", ".yml", ".json")
    template_fields_renderers = {"application_file": "yaml", "body": "json"}
    operator_extra_links = (FlinkUILink(),)
    ui_color = "#e6f0fb"

    def __init__(
        self,
        *,
        application_file: str | None = None,
        body: dict[str, Any] | None = None,
        name: str | None = None,
        namespace: str | None = None,
        flinkops_conn_id: str = FlinkopsHook.default_conn_name,
        wait_until: str = "finished",
        deferrable: bool = True,
        delete_on_termination: str = "on_success",
        savepoint_on_kill: bool = False,
        ui_link_timeout: float = 30.0,
        poll_interval: float = 0.25,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (application_file is None) == (body is None):
            raise ValueError(f"{self.task_id}: give exactly one of application_file and body")
        if delete_on_termination not in DELETE_ON_TERMINATION:
            raise ValueError(
                f"{self.task_id}: delete_on_termination must be one of {DELETE_ON_TERMINATION}, "
                f"not {delete_on_termination!r}"
            )
        self.application_file = application_file
        self.body = body
        self.name = name
        self.namespace = namespace
        self.flinkops_conn_id = flinkops_conn_id
        self.wait_until: WaitUntil = wait_until_of(wait_until, self.task_id)
        self.deferrable = deferrable
        self.delete_on_termination = delete_on_termination
        self.savepoint_on_kill = savepoint_on_kill
        self.ui_link_timeout = ui_link_timeout
        self.poll_interval = poll_interval
        # Relative paths inside the YAML (a local jar) resolve against the file's directory.
        templated = application_file is not None and application_file.endswith(tuple(self.template_ext))
        self._source = application_file if templated else None
        self._key: ResourceKey | None = None

    # ------------------------------------------------------------------ reading the resource

    def _base_dir(self) -> Path:
        dag_file = self.dag.fileloc if self.has_dag() else None
        folder = Path(dag_file).parent if dag_file else Path.cwd()
        if self._source:
            return (folder / self._source).parent.resolve()
        return folder

    def _document(self) -> dict[str, Any]:
        """The one resource of ``body`` or ``application_file``, as plain data."""
        given: Any
        if self.body is not None:
            given = self.body
        else:
            # flinkops' own YAML reader: its limits (size, aliases, depth) hold for a rendered template too.
            try:
                given = parse_documents(str(self.application_file), self._source or "application_file")
            except InvalidInput as exc:
                problems = _problems(exc)
                raise AirflowFailException(f"application_file is not YAML, nothing was created: {problems}") from None
        docs: list[Any] = [given] if isinstance(given, dict) else [d for d in given if d is not None]
        if not all(isinstance(d, dict) for d in docs):
            raise AirflowFailException("application_file/body: each document must be a mapping (a resource)")
        if len(docs) != 1:
            raise AirflowFailException(
                f"application_file/body: holds {len(docs)} resources; a task runs exactly one FlinkDeployment "
                "or FlinkSessionJob (one task per resource; session clusters are their own task)"
            )
        document: dict[str, Any] = docs[0]
        return document

    def _resource(self, hook: FlinkopsHook) -> Resource:
        document = self._document()
        metadata = dict(document.get("metadata") or {})
        if self.name:
            metadata["name"] = self.name
        metadata["namespace"] = self.namespace or metadata.get("namespace") or hook.namespace
        document = {**document, "metadata": metadata}
        source = self._source or ("application_file" if self.application_file is not None else "body")
        try:
            (resource,) = hook.load([document], source=source, base=self._base_dir())
        except InvalidInput as exc:
            raise AirflowFailException(f"{source} is invalid, nothing was created: {_problems(exc)}") from None
        return resource

    # ------------------------------------------------------------------ running

    def execute(self, context: Context) -> Any:
        hook = FlinkopsHook(self.flinkops_conn_id)
        resource = self._resource(hook)
        key = self._key = ResourceKey.of(resource)
        context["ti"].xcom_push(
            key=RESOURCE_XCOM, value={"kind": key.kind, "namespace": key.namespace, "name": key.name}
        )
        generation = self._submit(hook, resource, key)
        if isinstance(generation, JobOutcome):
            return self._finish(hook, generation)
        decided = self._record_ui_link(hook, key, generation, context)
        if decided is not None:
            return self._finish(hook, decided)
        if self.deferrable:
            self.defer(
                trigger=FlinkDeploymentTrigger(
                    flinkops_conn_id=self.flinkops_conn_id,
                    kind=key.kind,
                    namespace=key.namespace,
                    name=key.name,
                    generation=generation,
                    wait_until=self.wait_until,
                    savepoint_on_kill=self.savepoint_on_kill,
                    end_task=True,
                    delete_on_termination=self.delete_on_termination,
                ),
                method_name="execute_complete",
                timeout=self.execution_timeout,
            )
        return self._finish(hook, self._wait(hook, key, generation))

    def _submit(self, hook: FlinkopsHook, resource: Resource, key: ResourceKey) -> int | JobOutcome:
        """Apply ``resource``, or reattach to it; the generation to wait for, or the outcome already reached."""
        existing = hook.get(key)
        if existing is not None and existing.metadata.deletion_timestamp:
            self.log.info("%s is being deleted: waiting until it is gone, then creating it again", key)
            hook.delete(key, wait=True)
            existing = None
        given = resource
        if existing is not None:
            resource = _with_requests_of(existing, resource)
        if existing is not None and existing.spec == resource.spec:
            generation = existing.metadata.generation or 1
            found = outcome(existing, self.wait_until, generation)
            if found is None:
                job = existing.status.job_status.job_id if existing.status is not None else None
                self.log.info(
                    "reattaching to %s (generation %s, job %s): not submitting it again", key, generation, job
                )
                return generation
            if found.succeeded:
                self.log.info("%s already reached %s (job %s): its outcome again", key, found.state, found.job_id)
                return found
            self.log.info("%s: its last job FAILED (%s); deleting it to run it again", key, found.error)
            hook.delete(key, wait=True)
            resource = given  # created anew: without the deleted one's snapshot requests
        try:
            (applied,) = hook.apply([resource])
        except InvalidInput as exc:
            raise AirflowFailException(f"{key.name} is invalid, nothing was created: {_problems(exc)}") from None
        self.log.info("%s %s (generation %s)", key, applied.outcome, applied.generation)
        return int(applied.generation)

    def _record_ui_link(
        self, hook: FlinkopsHook, key: ResourceKey, generation: int, context: Context
    ) -> JobOutcome | None:
        """Wait (at most ``ui_link_timeout``) for the JobManager's address, for the task's Flink UI button. The
        outcome, if the job ends meanwhile."""
        deadline = time.monotonic() + self.ui_link_timeout
        for current in hook.follow(key, max(0.0, self.ui_link_timeout)):
            found = self._outcome(current, key, generation)
            url = hook.ui_url(current) if current is not None else None
            if url:
                context["ti"].xcom_push(key=FLINK_UI_XCOM, value=url)
                self.log.info("Flink UI of %s: %s", key, url)
            if found is not None:
                return found
            if url or time.monotonic() >= deadline:
                break
        return None

    def _wait(self, hook: FlinkopsHook, key: ResourceKey, generation: int) -> JobOutcome:
        """The synchronous wait (``deferrable=False``): follow the resource in this worker."""
        while True:
            for current in hook.follow(key, 60.0):
                found = self._outcome(current, key, generation)
                if found is not None:
                    return found

    def _outcome(self, current: Resource | None, key: ResourceKey, generation: int) -> JobOutcome | None:
        return outcome(current, self.wait_until, generation, kind=key.kind, namespace=key.namespace, name=key.name)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        if event.get("status") != "done":
            raise AirflowException(f"waiting for the job failed: {event.get('message', event)}")
        found = JobOutcome.from_dict(event["outcome"])
        key = self._key = ResourceKey(found.kind, found.namespace, found.name)
        hook = FlinkopsHook(self.flinkops_conn_id)
        if found.state == "finished" and found.ended_at_ms is None and found.kind == "FlinkDeployment":
            # The trigger fired on FINISHED; the run record (duration, accumulators) closes seconds later.
            found = self._wait(hook, key, int(event.get("generation") or 1))
        return self._finish(hook, found)

    def _finish(self, hook: FlinkopsHook, found: JobOutcome) -> dict[str, Any]:
        key = ResourceKey(found.kind, found.namespace, found.name)
        ended = found.state in ("finished", "failed")
        if found.succeeded:
            self.log.info(
                "%s: %s (job %s, %s ms, accumulators %s)",
                key,
                found.state,
                found.job_id,
                found.duration_ms,
                found.accumulators,
            )
        else:
            self.log.error("%s: job %s FAILED:\n%s", key, found.job_id, found.error)
        policy = self.delete_on_termination
        wanted = ended and (policy == "always" or (policy == "on_success" and found.succeeded))
        # The ended job's cluster is released already: the controller removes the resource right after.
        if wanted and hook.delete(key, wait=False):
            self.log.info("deleting %s (delete_on_termination=%s)", key, policy)
        if not found.succeeded:
            raise AirflowException(f"{key.kind} {key.namespace}/{key.name}: job FAILED: {found.cause or 'failed'}")
        return found.as_dict()

    def on_kill(self) -> None:
        if self._key is not None:
            FlinkopsHook(self.flinkops_conn_id).tear_down(self._key, savepoint=self.savepoint_on_kill)


class FlinkSavepointOperator(BaseOperator):
    """Take a savepoint of the running job of FlinkDeployment ``name`` now; returns its location (XCom)."""

    template_fields: Sequence[str] = ("name", "namespace")

    def __init__(
        self,
        *,
        name: str,
        namespace: str | None = None,
        flinkops_conn_id: str = FlinkopsHook.default_conn_name,
        savepoint_timeout: float = 600.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.name = name
        self.namespace = namespace
        self.flinkops_conn_id = flinkops_conn_id
        self.savepoint_timeout = savepoint_timeout

    def execute(self, context: Context) -> str:
        hook = FlinkopsHook(self.flinkops_conn_id)
        namespace = self.namespace or hook.namespace
        try:
            location = hook.savepoint(self.name, namespace, timeout=self.savepoint_timeout)
        except InvalidInput as exc:
            raise AirflowFailException(_problems(exc)) from None
        except NotFound as exc:  # a retry cannot make it exist
            raise AirflowFailException(f"savepoint of {namespace}/{self.name}: {exc}") from None
        except FlinkopsError as exc:
            raise AirflowException(f"savepoint of {namespace}/{self.name}: {exc}") from None
        self.log.info("savepoint of %s/%s: %s", namespace, self.name, location)
        return location
