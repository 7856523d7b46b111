"""Secret references through the control loop (on fakes): the values reach the cluster request's process environment
only, and a secret that cannot be read fails the start with an error naming the reference, before the running job
is stopped for an upgrade."""

from __future__ import annotations

import pytest

from behaviour.steps import deploy, running_stable
from fakes.specs import application
from fakes.world import World
from flinkops.api.secrets import parse_reference

REF = "${secret:vault:secret/payments/kafka#password}"
MISSING = "${secret:vault:secret/payments/kafka#rotated}"
VALUE = "hunter2-not-for-status"


def _no_value_recorded(world: World) -> None:
    resource = world.resource("app")
    assert resource is not None
    recorded = resource.model_dump_json() + "".join(e.message for e in world.events("app"))
    assert VALUE not in recorded, "a resolved value is in the status or the events"


def test_the_value_travels_in_the_process_environment_and_the_reference_in_the_config(world: World) -> None:
    world.provisioner.secrets[REF] = VALUE
    deploy(world, application("app", mode="savepoint", conf={"security.ssl.keystore-password": REF}))
    cluster = world.runtime.cluster("app")
    assert cluster is not None
    assert cluster.request.flink_config["security.ssl.keystore-password"] == REF
    assert cluster.request.environment[parse_reference(REF).env_name] == VALUE
    _no_value_recorded(world)


@pytest.mark.parametrize("prestart", ["true", "false"])
def test_a_missing_secret_fails_before_the_running_job_is_stopped_for_an_upgrade(world: World, prestart: str) -> None:
    world.provisioner.secrets[REF] = VALUE
    conf = {"security.ssl.keystore-password": REF, "flinkops.upgrade.prestart": prestart}
    deploy(world, application("app", mode="savepoint", conf=conf))
    world.edit("app", conf={"security.ssl.keystore-password": MISSING})
    world.run_until(lambda w: bool(w.deployment_status("app").error), max_passes=10, what="the error")
    error = world.deployment_status("app").error or ""
    assert f"{MISSING}: no such secret" in error
    [run] = world.runs("app")
    assert run.alive and run.state == "RUNNING", "the running job is not stopped for a start that cannot happen"
    _no_value_recorded(world)

    world.provisioner.secrets[MISSING] = VALUE + "-rotated"
    world.run_until(running_stable("app", 2), what="the upgrade once the secret exists")
    old, new = world.runs("app")
    assert old.state == "FINISHED" and new.state == "RUNNING"
    _no_value_recorded(world)
