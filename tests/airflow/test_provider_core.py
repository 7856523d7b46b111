"""The provider's parts on Airflow's own classes, without Flink: the trigger in Airflow's style (serialize, rebuild
from the serialized form, drive ``run()`` under asyncio, on pytest-asyncio's loop where the test is ``async``), the
hook's connection handling, and the operator's decisions (bad input creates nothing, a retry reattaches, a failed
job fails the task with its cause).

A ``LocalTarget`` on a temporary home stands in for where jobs run; nothing reconciles it (``ensure_controller`` is
a no-op here), so each test writes the statuses a controller would. The real thing, on real Airflow processes and
real Flink, is ``test_provider_live.py``.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException, TaskDeferred

from flinkops.api.models import FlinkDeployment, LifecycleState
from flinkops.ports import ResourceKey
from flinkops.service.target import LocalTarget
from flinkops_airflow import get_provider_info
from flinkops_airflow.hooks import FlinkopsHook, FlinkopsSettings
from flinkops_airflow.operators import FlinkDeploymentOperator
from flinkops_airflow.triggers import FlinkDeploymentTrigger
from support.controller_double import FakeTI, record

CONN = "flinkops_test"
JOB = """\
apiVersion: flink.apache.org/v1beta1
kind: FlinkDeployment
metadata:
  name: placeholder
spec:
  flinkVersion: v2_2
  job:
    jarURI: local:///opt/flink/examples/streaming/WordCount.jar
    parallelism: 1
    upgradeMode: stateless
"""


class QuietTarget(LocalTarget):
    """A local target whose resources nobody reconciles: the test plays the controller."""

    def ensure_controller(self) -> None:
        pass

    def local_files(self, resources: Any, *, fetch: bool = True) -> Any:
        from flinkops.provisioning.preflight import LocalFiles

        return LocalFiles()  # no jar to check: nothing runs


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{CONN.upper()}",
        json.dumps({"conn_type": "flinkops", "extra": {"target": "local", "home": str(home)}}),
    )
    return home


@pytest.fixture
def target(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[QuietTarget]:
    quiet = QuietTarget(home)
    original = FlinkopsHook.get_conn

    def get_conn(self: FlinkopsHook) -> Any:
        self._target = quiet
        return quiet

    monkeypatch.setattr(FlinkopsHook, "get_conn", get_conn)
    yield quiet
    monkeypatch.setattr(FlinkopsHook, "get_conn", original)


# ------------------------------------------------------------------ provider info


def test_provider_info_validates_against_airflows_schema_and_names_real_classes() -> None:
    import jsonschema
    from airflow.providers_manager import ProvidersManager  # noqa: F401  (the schema ships with Airflow)

    schema_path = Path(importlib.import_module("airflow").__file__).parent / "provider_info.schema.json"  # type: ignore[arg-type]
    info = get_provider_info()
    jsonschema.validate(info, json.loads(schema_path.read_text()))
    for connection in info["connection-types"]:
        module, _, name = connection["hook-class-name"].rpartition(".")
        assert getattr(importlib.import_module(module), name).conn_type == connection["connection-type"]
    for group in ("operators", "sensors", "hooks", "triggers"):
        for entry in info[group]:
            for module in entry["python-modules"]:
                importlib.import_module(module)
    for link in info["extra-links"]:
        module, _, name = link.rpartition(".")
        getattr(importlib.import_module(module), name)


# ------------------------------------------------------------------ the hook


def test_a_missing_connection_says_how_to_add_one() -> None:
    with pytest.raises(AirflowFailException) as failed:
        _ = FlinkopsHook("no_such_connection").settings
    message = str(failed.value)
    assert (
        "no_such_connection" in message and "airflow connections add" in message and "--conn-type flinkops" in message
    )


def test_bad_connection_settings_name_each_field() -> None:
    with pytest.raises(AirflowFailException) as failed:
        FlinkopsSettings.from_extra("c", {"target": "yarn", "homedir": "/x", "namespace": 3})
    message = str(failed.value)
    assert "extra.target" in message and "extra.homedir" in message and "extra.namespace" in message


def test_the_connection_picks_the_local_home(home: Path) -> None:
    hook = FlinkopsHook(CONN)
    assert hook.settings == FlinkopsSettings(target="local", home=str(home))
    target = hook.get_conn()
    assert isinstance(target, LocalTarget) and target.home == home


# ------------------------------------------------------------------ the trigger


def test_the_trigger_serializes_and_a_rebuilt_one_is_the_same() -> None:
    trigger = FlinkDeploymentTrigger(
        flinkops_conn_id=CONN,
        kind="FlinkDeployment",
        namespace="batch",
        name="conv-1",
        generation=3,
        wait_until="finished",
        savepoint_on_kill=True,
    )
    path, kwargs = trigger.serialize()
    module, _, name = path.rpartition(".")
    rebuilt = getattr(importlib.import_module(module), name)(**kwargs)
    assert rebuilt.serialize() == (path, kwargs)
    assert path == "flinkops_airflow.triggers.FlinkDeploymentTrigger"
    json.dumps(kwargs)  # what the metadata database stores


def _first_event_of(trigger: FlinkDeploymentTrigger, timeout: float = 20.0) -> Any:
    async def first() -> Any:
        async for event in trigger.run():
            return event
        raise AssertionError("the trigger ended without an event")

    return asyncio.run(asyncio.wait_for(first(), timeout))


def _first_event(trigger: FlinkDeploymentTrigger, timeout: float = 20.0) -> dict[str, Any]:
    return dict(_first_event_of(trigger, timeout).payload)


@pytest.mark.asyncio
async def test_the_trigger_fires_on_the_jobs_end_not_on_a_ready_jobmanager(target: QuietTarget) -> None:
    """In Airflow's own style: the trigger serialized, rebuilt from its serialized form, its ``run()`` driven on
    pytest-asyncio's event loop."""
    from flinkops.service.applying import apply
    from flinkops.service.inputs import load_text

    (resource,) = load_text(target, JOB.replace("placeholder", "conv"), "job.yaml", Path.cwd())
    apply(target, [resource])
    record(target, "conv", state="RUNNING", lifecycle=LifecycleState.STABLE)
    path, kwargs = FlinkDeploymentTrigger(
        flinkops_conn_id=CONN, kind="FlinkDeployment", namespace="default", name="conv", generation=1
    ).serialize()
    module, _, name = path.rpartition(".")
    trigger = getattr(importlib.import_module(module), name)(**kwargs)

    events = trigger.run()
    waiting = asyncio.ensure_future(events.__anext__())
    await asyncio.sleep(1.0)
    assert not waiting.done(), "fired while the job still runs"
    await asyncio.to_thread(
        record, target, "conv", state="FINISHED", lifecycle=LifecycleState.STABLE, result={"rows": "7"}
    )
    payload = dict((await asyncio.wait_for(waiting, 10)).payload)
    await events.aclose()
    assert payload["status"] == "done"
    assert payload["outcome"]["state"] == "finished" and payload["outcome"]["accumulators"] == {"rows": "7"}


def test_the_trigger_reports_a_failed_job_with_its_root_cause(target: QuietTarget) -> None:
    from flinkops.service.applying import apply
    from flinkops.service.inputs import load_text

    (resource,) = load_text(target, JOB.replace("placeholder", "conv"), "job.yaml", Path.cwd())
    apply(target, [resource])
    record(
        target,
        "conv",
        state="FAILED",
        lifecycle=LifecycleState.FAILED,
        error="java.lang.ArithmeticException: / by zero",
    )
    payload = _first_event(
        FlinkDeploymentTrigger(
            flinkops_conn_id=CONN, kind="FlinkDeployment", namespace="default", name="conv", generation=1
        )
    )
    assert payload["outcome"]["state"] == "failed" and "ArithmeticException" in payload["outcome"]["error"]


def test_the_trigger_with_a_missing_connection_fires_an_error_instead_of_waiting() -> None:
    payload = _first_event(
        FlinkDeploymentTrigger(
            flinkops_conn_id="nope", kind="FlinkDeployment", namespace="default", name="x", generation=1
        )
    )
    assert payload["status"] == "error" and "nope" in payload["message"]


# ------------------------------------------------------------------ the operator


def operator(**kwargs: Any) -> FlinkDeploymentOperator:
    kwargs.setdefault("application_file", JOB)
    return FlinkDeploymentOperator(task_id="run", flinkops_conn_id=CONN, ui_link_timeout=0.5, **kwargs)


class Controller:
    """Plays the controller in a thread, for what a task waits on: a savepoint asked for through the spec's
    ``savepointTriggerNonce`` is recorded as taken (``file:///sp/<name>/savepoint-<nonce>``, the way flinkops'
    savepoint service waits for it), and a resource whose deletion was asked for is removed. ``done`` lists what
    it did, in order; ``last`` keeps each resource as it was just before its removal."""

    def __init__(self, target: QuietTarget) -> None:
        self.target = target
        self.done: list[tuple[str, str]] = []
        self.last: dict[str, FlinkDeployment] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._play, daemon=True)

    def __enter__(self) -> Controller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _play(self) -> None:
        from flinkops.api.models import Savepoint, SavepointInfo
        from flinkops.errors import Conflict

        store = self.target.store()
        while not self._stop.wait(0.02):
            for current in store.list_resources():
                assert isinstance(current, FlinkDeployment)
                name = current.metadata.name
                if current.metadata.deletion_timestamp:
                    self.last[name] = current
                    store.remove(ResourceKey.of(current))
                    self.done.append(("deleted", name))
                    continue
                nonce = current.spec.job.savepoint_trigger_nonce if current.spec.job is not None else None
                info = current.status.job_status.savepoint_info if current.status is not None else None
                taken = info.last_savepoint.trigger_nonce if info is not None and info.last_savepoint else None
                if current.status is None or not nonce or nonce == taken:
                    continue
                savepoint = Savepoint(
                    time_stamp=nonce, location=f"file:///sp/{name}/savepoint-{nonce}", trigger_nonce=nonce
                )
                job = current.status.job_status.model_copy(
                    update={"savepoint_info": SavepointInfo(last_savepoint=savepoint)}
                )
                try:
                    store.update_status(
                        current.model_copy(update={"status": current.status.model_copy(update={"job_status": job})})
                    )
                except Conflict:
                    continue  # written meanwhile: read it again
                self.done.append(("savepoint", name))


class InWorker:
    """``execute`` of a task that does not defer, in a thread: it waits the way it would in a worker."""

    def __init__(self, op: FlinkDeploymentOperator) -> None:
        self.ti = FakeTI()
        self.result: Any = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(op,), daemon=True)
        self._thread.start()

    def _run(self, op: FlinkDeploymentOperator) -> None:
        try:
            self.result = op.execute({"ti": self.ti})  # type: ignore[arg-type]
        except BaseException as exc:  # what the task would end with
            self.error = exc

    @property
    def waiting(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float = 10.0) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the task still waits"


def _until(check: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.02)


def test_an_invalid_resource_fails_the_task_with_the_field_path_and_creates_nothing(target: QuietTarget) -> None:
    for bad, path in (
        (JOB.replace("upgradeMode: stateless", "upgradeMode: sometimes"), "spec.job.upgradeMode"),
        (JOB.replace("parallelism: 1", "parallelism: -2"), "spec.job.parallelism"),
        (JOB.replace("  flinkVersion: v2_2", "  flinkVersion: v2_2\n  jobManagr: {}"), "spec.jobManagr"),
    ):
        with pytest.raises(AirflowFailException) as failed:
            operator(application_file=bad, name="conv").execute({"ti": FakeTI()})  # type: ignore[arg-type]
        message = str(failed.value)
        assert path in message and "nothing was created" in message, message
    with pytest.raises(AirflowFailException) as failed:
        operator(application_file=JOB, name="Not_A_Name").execute({"ti": FakeTI()})  # type: ignore[arg-type]
    assert "metadata.name" in str(failed.value)
    assert target.store().list_resources() == []


def test_a_retry_reattaches_to_the_running_job_instead_of_submitting_again(target: QuietTarget) -> None:
    first = operator(name="conv", deferrable=True)
    with pytest.raises(TaskDeferred):
        first.execute({"ti": FakeTI()})  # type: ignore[arg-type]
    record(target, "conv", state="RUNNING", lifecycle=LifecycleState.STABLE)
    before = target.store().get(ResourceKey("FlinkDeployment", "default", "conv"))
    ti = FakeTI()
    with pytest.raises(TaskDeferred) as deferred:
        operator(name="conv").execute({"ti": ti})  # type: ignore[arg-type]
    after = target.store().get(ResourceKey("FlinkDeployment", "default", "conv"))
    assert before is not None and after is not None
    assert (
        after.metadata.generation == before.metadata.generation
        and after.metadata.resource_version == before.metadata.resource_version
    )
    assert deferred.value.trigger.generation == before.metadata.generation
    assert ti.xcom["flink_ui_url"] == "http://127.0.0.1:8081"


def test_a_finished_job_succeeds_with_its_result_and_its_resource_is_deleted(target: QuietTarget) -> None:
    op = operator(name="conv")
    with pytest.raises(TaskDeferred):
        op.execute({"ti": FakeTI()})  # type: ignore[arg-type]
    record(target, "conv", state="FINISHED", lifecycle=LifecycleState.STABLE, result={"rows": "7"})
    payload = _first_event(
        FlinkDeploymentTrigger(
            flinkops_conn_id=CONN, kind="FlinkDeployment", namespace="default", name="conv", generation=1
        )
    )
    # Nothing reconciles here: the deletion is asked for and the test removes the resource as the controller would.
    key = ResourceKey("FlinkDeployment", "default", "conv")
    op_hook_delete = FlinkopsHook.delete

    def delete(self: FlinkopsHook, key: ResourceKey, *, wait: bool = True, timeout: float = 120.0) -> bool:
        asked = op_hook_delete(self, key, wait=False)
        target.store().remove(key)
        return asked

    FlinkopsHook.delete = delete  # type: ignore[method-assign]
    try:
        result = op.execute_complete({"ti": FakeTI()}, payload)  # type: ignore[arg-type]
    finally:
        FlinkopsHook.delete = op_hook_delete  # type: ignore[method-assign]
    assert result["state"] == "finished" and result["accumulators"] == {"rows": "7"} and result["job_id"] == "a" * 32
    assert target.store().get(key) is None


def test_the_operators_trigger_ends_a_successful_task_itself_once_the_run_is_closed(target: QuietTarget) -> None:
    """A deferred task whose job FINISHED is ended by the trigger (no worker resumes it): with the closed run
    record as its return value, and its resource deleted per ``delete_on_termination``."""
    from airflow.triggers.base import TaskSuccessEvent

    with pytest.raises(TaskDeferred) as deferred:
        operator(name="conv").execute({"ti": FakeTI()})  # type: ignore[arg-type]
    _, kwargs = deferred.value.trigger.serialize()
    assert kwargs["end_task"] is True and kwargs["delete_on_termination"] == "on_success"
    trigger = FlinkDeploymentTrigger(**kwargs)
    key = ResourceKey("FlinkDeployment", "default", "conv")
    record(target, "conv", state="FINISHED", lifecycle=LifecycleState.STABLE, closed=False)

    async def scenario() -> Any:
        events = trigger.run()
        waiting = asyncio.ensure_future(events.__anext__())
        await asyncio.sleep(0.5)
        assert not waiting.done(), "ended the task before the run record held the job's figures"
        await asyncio.to_thread(
            record, target, "conv", state="FINISHED", lifecycle=LifecycleState.STABLE, result={"rows": "7"}
        )
        return await asyncio.wait_for(waiting, 10)

    event = asyncio.run(scenario())
    assert isinstance(event, TaskSuccessEvent)
    assert event.xcoms is not None
    value = event.xcoms["return_value"]
    assert isinstance(value, dict) and value["state"] == "finished" and value["accumulators"] == {"rows": "7"}
    current = target.store().get(key)
    assert current is None or current.metadata.deletion_timestamp, "delete_on_termination=on_success not applied"


def test_the_operators_trigger_resumes_a_failed_task_in_a_worker(target: QuietTarget) -> None:
    """A failed job is not ended from the triggerer: the task resumes, to fail with Flink's cause in its log and
    be retried per its ``retries``; its resource stays (``on_success``)."""
    with pytest.raises(TaskDeferred) as deferred:
        operator(name="conv").execute({"ti": FakeTI()})  # type: ignore[arg-type]
    record(target, "conv", state="FAILED", lifecycle=LifecycleState.FAILED, error="java.io.IOException: gone")
    payload = _first_event(FlinkDeploymentTrigger(**deferred.value.trigger.serialize()[1]))
    assert payload["status"] == "done" and payload["outcome"]["state"] == "failed"
    assert target.store().get(ResourceKey("FlinkDeployment", "default", "conv")) is not None


def test_a_failed_job_fails_the_task_with_flinks_cause_and_keeps_the_resource(target: QuietTarget) -> None:
    op = operator(name="conv")
    with pytest.raises(TaskDeferred):
        op.execute({"ti": FakeTI()})  # type: ignore[arg-type]
    record(
        target,
        "conv",
        state="FAILED",
        lifecycle=LifecycleState.FAILED,
        error="java.lang.ArithmeticException: / by zero\n\tat Job.main",
    )
    payload = _first_event(
        FlinkDeploymentTrigger(
            flinkops_conn_id=CONN, kind="FlinkDeployment", namespace="default", name="conv", generation=1
        )
    )
    with pytest.raises(AirflowException) as failed:
        op.execute_complete({"ti": FakeTI()}, payload)  # type: ignore[arg-type]
    assert "ArithmeticException: / by zero" in str(failed.value)
    assert target.store().get(ResourceKey("FlinkDeployment", "default", "conv")) is not None, "on_success keeps it"


KEY = ResourceKey("FlinkDeployment", "default", "conv")


def test_killing_a_task_that_waits_in_its_worker_deletes_its_deployment(target: QuietTarget) -> None:
    """``on_kill`` of a task that did not defer (``deferrable=False``): the deployment is deleted (waited for until
    it is gone), no savepoint is asked for, and the worker's wait ends instead of following a deleted resource."""
    op = operator(name="conv", deferrable=False)
    with Controller(target) as controller:
        task = InWorker(op)
        _until(lambda: target.store().get(KEY) is not None)
        record(target, "conv", state="RUNNING", lifecycle=LifecycleState.STABLE)
        time.sleep(0.3)
        assert task.waiting
        op.on_kill()
        assert controller.done == [("deleted", "conv")]
        task.join()
    assert target.store().list_resources() == []
    last = controller.last["conv"]
    assert last.spec.job is not None and last.spec.job.savepoint_trigger_nonce is None, "no savepoint was asked for"
    assert isinstance(task.error, AirflowException) and "deleted before its job ended" in str(task.error)


def test_killing_a_waiting_task_with_savepoint_on_kill_takes_a_savepoint_then_deletes(target: QuietTarget) -> None:
    """``savepoint_on_kill=True`` on a streaming job waited for in the worker: the savepoint is asked for through
    the spec's trigger nonce (as ``flinkops savepoint`` asks), its completion waited for, and only then is the
    deployment deleted."""
    op = operator(name="conv", deferrable=False, wait_until="stable", savepoint_on_kill=True)
    with Controller(target) as controller:
        task = InWorker(op)
        _until(lambda: target.store().get(KEY) is not None)
        record(target, "conv", state="RUNNING", lifecycle=LifecycleState.DEPLOYED)  # running, not judged yet
        time.sleep(0.3)
        assert task.waiting
        op.on_kill()
        assert controller.done == [("savepoint", "conv"), ("deleted", "conv")]
        task.join()
    assert target.store().list_resources() == []
    last = controller.last["conv"]  # as the deletion found it
    assert last.spec.job is not None and last.spec.job.savepoint_trigger_nonce == 1
    assert last.status is not None and last.status.job_status.savepoint_info is not None
    taken = last.status.job_status.savepoint_info.last_savepoint
    assert taken is not None and (taken.location, taken.trigger_nonce) == ("file:///sp/conv/savepoint-1", 1)


def test_a_streaming_task_waiting_for_stable_succeeds_once_judged_stable_not_before(target: QuietTarget) -> None:
    """``wait_until="stable"`` in the worker: a job that runs but is not judged STABLE yet (or is STABLE with its job
    restarting) keeps the task waiting; RUNNING and STABLE ends it with success, without waiting for an end, and
    the streaming job keeps running (nothing deleted)."""
    op = operator(name="conv", deferrable=False, wait_until="stable")
    task = InWorker(op)
    _until(lambda: target.store().get(KEY) is not None)
    for state, lifecycle in (("RUNNING", LifecycleState.DEPLOYED), ("RESTARTING", LifecycleState.STABLE)):
        record(target, "conv", state=state, lifecycle=lifecycle)
        time.sleep(0.8)
        assert task.waiting, f"ended on a job {state} and {lifecycle}"
    record(target, "conv", state="RUNNING", lifecycle=LifecycleState.STABLE)
    task.join()
    assert task.error is None and task.result["state"] == "stable" and task.result["job_state"] == "RUNNING"
    current = target.store().get(KEY)
    assert current is not None and not current.metadata.deletion_timestamp, "a stable streaming job keeps running"


@pytest.mark.asyncio
async def test_a_deferred_streaming_task_is_ended_by_its_trigger_once_stable(target: QuietTarget) -> None:
    """The same through the trigger: not fired while the job is not judged STABLE; then the task ends from the
    triggerer with the stable outcome, and its resource stays. The task's ``execution_timeout`` bounds the wait."""
    from datetime import timedelta

    from airflow.triggers.base import TaskSuccessEvent

    op = operator(name="conv", wait_until="stable", execution_timeout=timedelta(minutes=5))
    with pytest.raises(TaskDeferred) as deferred:
        op.execute({"ti": FakeTI()})  # type: ignore[arg-type]
    assert deferred.value.timeout == timedelta(minutes=5)
    path, kwargs = deferred.value.trigger.serialize()
    assert kwargs["wait_until"] == "stable"
    module, _, name = path.rpartition(".")
    trigger = getattr(importlib.import_module(module), name)(**kwargs)
    record(target, "conv", state="RUNNING", lifecycle=LifecycleState.DEPLOYED)

    events = trigger.run()
    waiting = asyncio.ensure_future(events.__anext__())
    await asyncio.sleep(1.0)
    assert not waiting.done(), "fired before the job was judged stable"
    await asyncio.to_thread(record, target, "conv", state="RUNNING", lifecycle=LifecycleState.STABLE)
    event = await asyncio.wait_for(waiting, 10)
    await events.aclose()
    assert isinstance(event, TaskSuccessEvent) and event.xcoms is not None
    assert event.xcoms["return_value"]["state"] == "stable"
    current = target.store().get(KEY)
    assert current is not None and not current.metadata.deletion_timestamp, "a stable streaming job keeps running"


@pytest.mark.parametrize("deferrable", [False, True])
def test_the_tasks_result_carries_the_last_savepoint_the_controller_recorded(
    target: QuietTarget, deferrable: bool
) -> None:
    """The XCom a finished task returns, from the worker and from the trigger that ends a deferred task, has the
    job's last savepoint as recorded in its status (None when it has none)."""
    from airflow.triggers.base import TaskSuccessEvent

    def result(savepoint: str | None) -> dict[str, Any]:
        target.store().remove(KEY)
        op = operator(name="conv", deferrable=deferrable, delete_on_termination="never")
        if not deferrable:
            task = InWorker(op)
            _until(lambda: target.store().get(KEY) is not None)
            record(target, "conv", state="FINISHED", lifecycle=LifecycleState.STABLE, savepoint=savepoint)
            task.join()
            assert task.error is None
            return dict(task.result)
        with pytest.raises(TaskDeferred) as deferred:
            op.execute({"ti": FakeTI()})  # type: ignore[arg-type]
        record(target, "conv", state="FINISHED", lifecycle=LifecycleState.STABLE, savepoint=savepoint)
        event = _first_event_of(FlinkDeploymentTrigger(**deferred.value.trigger.serialize()[1]))
        assert isinstance(event, TaskSuccessEvent) and event.xcoms is not None
        return dict(event.xcoms["return_value"])

    taken = result("file:///sp/conv/savepoint-3")
    assert taken["state"] == "finished" and taken["last_savepoint"] == "file:///sp/conv/savepoint-3"
    assert result(None)["last_savepoint"] is None


def test_a_retry_after_a_failed_run_deletes_the_failed_deployment_and_runs_the_job_again(target: QuietTarget) -> None:
    """As documented: a retried task whose job FAILED deletes the failed resource (waiting until it is gone) and
    creates it again; the retry's trigger waits for the new run, not for the recorded failure."""
    with pytest.raises(TaskDeferred):
        operator(name="conv").execute({"ti": FakeTI()})  # type: ignore[arg-type]
    record(target, "conv", state="FAILED", lifecycle=LifecycleState.FAILED, error="java.io.IOException: gone")
    failed = target.store().get(KEY)
    assert failed is not None
    with Controller(target) as controller, pytest.raises(TaskDeferred) as deferred:
        operator(name="conv").execute({"ti": FakeTI()})  # type: ignore[arg-type]
    assert controller.done == [("deleted", "conv")]
    assert controller.last["conv"].metadata.uid == failed.metadata.uid
    again = target.store().get(KEY)
    assert again is not None and again.metadata.uid != failed.metadata.uid and again.status is None
    trigger = FlinkDeploymentTrigger(**deferred.value.trigger.serialize()[1])
    assert trigger.generation == again.metadata.generation
    with pytest.raises(TimeoutError):
        _first_event_of(trigger, timeout=0.8)  # nothing decided for the new run yet


def test_a_rerun_with_a_changed_spec_applies_it_as_an_update(target: QuietTarget) -> None:
    """As documented: the resource is there (its job running) and the task's file says something else now: the new
    spec is applied to the same resource (a new generation, not a new resource) and waited for; the old
    generation's job is not the answer."""
    with pytest.raises(TaskDeferred):
        operator(name="conv").execute({"ti": FakeTI()})  # type: ignore[arg-type]
    record(target, "conv", state="FINISHED", lifecycle=LifecycleState.STABLE)
    before = target.store().get(KEY)
    assert before is not None
    with pytest.raises(TaskDeferred) as deferred:
        operator(name="conv", application_file=JOB.replace("parallelism: 1", "parallelism: 2")).execute(
            {"ti": FakeTI()}  # type: ignore[arg-type]
        )
    after = target.store().get(KEY)
    assert isinstance(after, FlinkDeployment) and after.spec.job is not None
    assert after.spec.job.parallelism == 2 and after.metadata.uid == before.metadata.uid
    assert after.metadata.generation == (before.metadata.generation or 0) + 1
    trigger = FlinkDeploymentTrigger(**deferred.value.trigger.serialize()[1])
    assert trigger.generation == after.metadata.generation
    with pytest.raises(TimeoutError):
        _first_event_of(trigger, timeout=0.8)  # generation 1's FINISHED is not this spec's outcome
    record(target, "conv", state="FINISHED", lifecycle=LifecycleState.STABLE, result={"rows": "9"})
    event = _first_event_of(trigger)
    assert event.xcoms["return_value"]["accumulators"] == {"rows": "9"}


def test_a_rerun_after_a_savepoint_of_its_running_job_reattaches_instead_of_updating(target: QuietTarget) -> None:
    """A savepoint taken of the running job (``FlinkSavepointOperator``, ``flinkops savepoint``) sets the stored
    spec's trigger nonce, which the task's file does not have: that is no change of the spec. A rerun reattaches
    (same generation), and the nonce stays, so the next savepoint is asked for with a new one."""
    from flinkops_airflow.operators import FlinkSavepointOperator

    with pytest.raises(TaskDeferred):
        operator(name="conv").execute({"ti": FakeTI()})  # type: ignore[arg-type]
    record(target, "conv", state="RUNNING", lifecycle=LifecycleState.STABLE)
    with Controller(target):
        taken = FlinkSavepointOperator(task_id="sp", name="conv", flinkops_conn_id=CONN, savepoint_timeout=10)
        assert taken.execute({}) == "file:///sp/conv/savepoint-1"  # type: ignore[arg-type]
    before = target.store().get(KEY)
    assert before is not None
    with pytest.raises(TaskDeferred) as deferred:
        operator(name="conv").execute({"ti": FakeTI()})  # type: ignore[arg-type]
    after = target.store().get(KEY)
    assert isinstance(after, FlinkDeployment) and after.spec.job is not None
    assert after.metadata.generation == before.metadata.generation, "applied as a change"
    assert after.spec.job.savepoint_trigger_nonce == 1
    assert deferred.value.trigger.generation == before.metadata.generation


# ------------------------------------------------------------------ the sensor and the savepoint operator


def _created(target: QuietTarget, name: str) -> None:
    from flinkops.service.applying import apply
    from flinkops.service.inputs import load_text

    (resource,) = load_text(target, JOB.replace("placeholder", name), "job.yaml", Path.cwd())
    apply(target, [resource])


def test_the_sensor_waits_through_a_ready_jobmanager_and_succeeds_on_the_jobs_end(target: QuietTarget) -> None:
    from flinkops_airflow.sensors import FlinkDeploymentSensor

    sensor = FlinkDeploymentSensor(task_id="wait", name="conv", flinkops_conn_id=CONN, deferrable=False)
    assert sensor.poke({}) is False, "nothing there yet: waited for, not a failure"  # type: ignore[arg-type]
    _created(target, "conv")
    record(target, "conv", state="RUNNING", lifecycle=LifecycleState.STABLE)
    assert sensor.poke({}) is False  # type: ignore[arg-type]
    record(target, "conv", state="FINISHED", lifecycle=LifecycleState.STABLE, result={"rows": "3"})
    done = sensor.poke({})  # type: ignore[arg-type]
    assert done and done.xcom_value["accumulators"] == {"rows": "3"}  # type: ignore[union-attr]
    record(
        target, "conv", state="FAILED", lifecycle=LifecycleState.FAILED, error="x\nCaused by: java.io.IOException: disk"
    )
    with pytest.raises(AirflowException, match=r"java\.io\.IOException: disk"):
        sensor.poke({})  # type: ignore[arg-type]


def test_the_deferred_sensor_on_a_resource_not_created_yet_waits_for_it(target: QuietTarget) -> None:
    from flinkops_airflow.sensors import FlinkDeploymentSensor

    with pytest.raises(TaskDeferred) as deferred:
        FlinkDeploymentSensor(task_id="wait", name="later", flinkops_conn_id=CONN).execute({})  # type: ignore[arg-type]
    trigger = deferred.value.trigger
    assert trigger.wait_for_creation and not trigger.delete_on_kill, "a sensor never deletes what it did not create"

    async def scenario() -> dict[str, Any]:
        events = trigger.run()
        waiting = asyncio.ensure_future(events.__anext__())
        await asyncio.sleep(1.5)
        assert not waiting.done(), "a resource not created yet is no outcome"
        await asyncio.to_thread(_created, target, "later")
        await asyncio.to_thread(record, target, "later", state="FINISHED", lifecycle=LifecycleState.STABLE)
        return dict((await asyncio.wait_for(waiting, 15)).payload)

    assert asyncio.run(scenario())["outcome"]["state"] == "finished"


def test_the_savepoint_operator_returns_the_location_the_controller_recorded(target: QuietTarget) -> None:
    import threading

    from flinkops.api.models import Savepoint, SavepointInfo
    from flinkops_airflow.operators import FlinkSavepointOperator

    _created(target, "stream")
    record(target, "stream", state="RUNNING", lifecycle=LifecycleState.STABLE)
    key = ResourceKey("FlinkDeployment", "default", "stream")

    def controller() -> None:
        """Plays the controller: once the savepoint is asked for (the spec's nonce), records it as taken."""
        for _ in range(200):
            current = target.store().get(key)
            assert isinstance(current, FlinkDeployment) and current.spec.job is not None and current.status is not None
            nonce = current.spec.job.savepoint_trigger_nonce
            if nonce:
                taken = Savepoint(time_stamp=1, location="file:///sp/savepoint-1", trigger_nonce=nonce)
                job = current.status.job_status.model_copy(
                    update={"savepoint_info": SavepointInfo(last_savepoint=taken)}
                )
                target.store().update_status(
                    current.model_copy(update={"status": current.status.model_copy(update={"job_status": job})})
                )
                return
            threading.Event().wait(0.05)

    playing = threading.Thread(target=controller)
    playing.start()
    location = FlinkSavepointOperator(task_id="sp", name="stream", flinkops_conn_id=CONN, savepoint_timeout=20).execute(
        {}
    )  # type: ignore[arg-type]
    playing.join(10)
    assert location == "file:///sp/savepoint-1"
    with pytest.raises(AirflowFailException):
        FlinkSavepointOperator(task_id="sp", name="missing", flinkops_conn_id=CONN, savepoint_timeout=2).execute({})  # type: ignore[arg-type]
