"""service.apply and service.inputs against a real SQLite store: all-or-nothing validation with field paths,
idempotence, generations, the restore-path preflight, and how input files are read."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from flinkops.errors import InvalidInput
from flinkops.ports import ResourceKey
from flinkops.service import KubernetesTarget, apply, check, load_text, read_files
from flinkops.settings import SOURCE_DIR_ANNOTATION
from support.service import TestTarget, deployment, deployment_yaml, session_cluster, session_job

GOOD = deployment_yaml("good")


def paths(exc: pytest.ExceptionInfo[InvalidInput]) -> set[str]:
    return {p.path for p in exc.value.problems}


def test_invalid_input_names_every_field_and_writes_nothing(target: TestTarget) -> None:
    apply(target, [deployment("existing")])
    before = target.documents()
    bad = deployment("bad", parallelism=0).model_copy(update={"metadata": deployment("Bad_Name").metadata})
    on_application = session_job("misplaced", cluster="existing")
    with pytest.raises(InvalidInput) as exc:
        apply(target, [deployment("fine"), bad, on_application])
    assert {"metadata.name", "spec.job.parallelism", "spec.deploymentName"} <= paths(exc)
    assert target.documents() == before  # the valid resource in the same batch was not written either
    assert target.controller_starts == 1  # only the first apply asked for the controller


def test_parse_errors_keep_their_paths(target: TestTarget) -> None:
    text = GOOD.replace("parallelism: 1", "parallelism: two\n    paralelism: 1")
    with pytest.raises(InvalidInput) as exc:
        load_text(target, text, "job.yaml", Path("/work"))
    rendered = [p.render() for p in exc.value.problems]
    assert any("spec.job.parallelism" in r for r in rendered)
    assert any("did you mean 'parallelism'" in r for r in rendered)


def test_apply_is_idempotent_and_bumps_the_generation_only_on_a_spec_change(target: TestTarget) -> None:
    (created,) = apply(target, [deployment()])
    assert (created.outcome, created.generation) == ("created", 1)
    assert created.key == ResourceKey("FlinkDeployment", "default", "fraud")
    (again,) = apply(target, [deployment()])
    assert (again.outcome, again.generation) == ("unchanged", 1)
    (changed,) = apply(target, [deployment(parallelism=2)])
    assert (changed.outcome, changed.generation) == ("configured", 2)
    assert target.controller_starts == 3
    assert apply(target, [deployment(parallelism=3)], start_controller=False)[0].generation == 3
    assert target.controller_starts == 3


def test_a_session_job_may_come_with_its_cluster_in_one_batch(target: TestTarget) -> None:
    applied = apply(target, [session_cluster(), session_job()])
    assert [a.outcome for a in applied] == ["created", "created"]


def test_session_jobs_may_arrive_before_their_cluster_in_any_order(target: TestTarget) -> None:
    # GitOps tools apply objects in any order; the reference operator accepts a job whose cluster is not there yet.
    (alone,) = apply(target, [session_job("early", cluster="later")])
    assert alone.outcome == "created"
    applied = apply(target, [session_job("a"), session_job("b"), session_cluster()])
    assert [a.outcome for a in applied] == ["created", "created", "created"]


def test_a_first_deployment_must_start_from_a_savepoint_that_exists(target: TestTarget, tmp_path: Path) -> None:
    missing = deployment(initial_savepoint_path=str(tmp_path / "savepoint-a1b2c3-000000000000"))
    with pytest.raises(InvalidInput) as exc:
        check(target, [missing])
    assert paths(exc) == {"spec.job.initialSavepointPath"}
    present = tmp_path / "savepoint-a1b2c3-111111111111"
    present.mkdir()
    (present / "_metadata").write_bytes(b"x")
    assert apply(target, [deployment(initial_savepoint_path=str(present))])[0].outcome == "created"


def test_the_restore_path_is_read_only_on_a_first_deployment_or_a_savepoint_redeploy(
    target: TestTarget, tmp_path: Path
) -> None:
    snapshot = tmp_path / "savepoint-a1b2c3-111111111111"
    snapshot.mkdir()
    (snapshot / "_metadata").write_bytes(b"x")
    apply(target, [deployment(initial_savepoint_path=str(snapshot))])
    (snapshot / "_metadata").unlink()  # gone since: an ordinary update does not read it again
    assert apply(target, [deployment(parallelism=2, initial_savepoint_path=str(snapshot))])[0].outcome == "configured"
    redeploy = deployment(parallelism=2, initial_savepoint_path=str(snapshot), savepoint_redeploy_nonce=1)
    with pytest.raises(InvalidInput) as exc:
        apply(target, [redeploy])
    assert paths(exc) == {"spec.job.initialSavepointPath"}


def test_files_are_read_together_and_locally_remember_their_directory(target: TestTarget, tmp_path: Path) -> None:
    first = tmp_path / "jobs" / "good.yaml"
    first.parent.mkdir()
    first.write_text(GOOD)
    resources = read_files(target, [first, Path("-")], stdin=io.StringIO(GOOD.replace("name: good", "name: piped")))
    assert [r.metadata.name for r in resources] == ["good", "piped"]
    assert (resources[0].metadata.annotations or {})[SOURCE_DIR_ANNOTATION] == str(first.parent)
    with pytest.raises(InvalidInput) as exc:
        read_files(target, [tmp_path / "nope.yaml", first.parent / "missing.yaml"])
    assert len(exc.value.problems) == 2
    with pytest.raises(InvalidInput, match="no resources found"):
        read_files(target, [Path("-")], stdin=io.StringIO(""))


def test_a_kubernetes_target_gets_the_resources_as_written() -> None:
    (resource,) = load_text(KubernetesTarget(context="elsewhere"), GOOD, "job.yaml", Path("/work"))
    assert SOURCE_DIR_ANNOTATION not in (resource.metadata.annotations or {})
