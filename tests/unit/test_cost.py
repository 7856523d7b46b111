"""The cost arithmetic (``core.cost``), the price table and ``flinkops cost``'s input errors. Every expected figure
is worked out by hand in the comment beside it, not with the module's own formula."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from flinkops.api.flinkconf import taskmanager_count
from flinkops.api.models import DeploymentRecord, FlinkDeployment, FlinkDeploymentSpec, FlinkDeploymentStatus
from flinkops.cli.main import app
from flinkops.core.cost import Prices, deployment_cost, requested_resources, run_cost, taskmanagers
from flinkops.errors import InvalidInput
from flinkops.service import apply
from flinkops.service.cost import DEFAULT_PRICES, load_prices
from support.service import TestTarget

PRICES = Prices(currency="USD", vcpu_hour=0.04, gib_hour=0.01, kpu_hour=0.11, aws_orchestration_kpus=1, cu_hour=0.2)


def spec(**fields: Any) -> FlinkDeploymentSpec:
    return FlinkDeploymentSpec.model_validate(fields)


#: The conversions batch example's shape: JobManager 1 cpu 1024m, TaskManager 1 cpu 1536m, 2 slots, parallelism 2.
CONVERSIONS = spec(
    flinkVersion="v2_2",
    flinkConfiguration={"taskmanager.numberOfTaskSlots": "2", "execution.runtime-mode": "BATCH"},
    jobManager={"resource": {"memory": "1024m", "cpu": 1}},
    taskManager={"resource": {"memory": "1536m", "cpu": 1}},
    job={"jarURI": "local:///job.jar", "parallelism": 2},
)


def batch_run(**extra: Any) -> DeploymentRecord:
    fields: dict[str, Any] = {
        "generation": 1,
        "job_id": "j1",
        "started_at": 1_000_000,  # deploy began
        "running_at": 1_010_000,  # +10 s: all tasks running
        "ended_at": 1_070_000,  # +70 s: FINISHED
        "end_state": "FINISHED",
        "released_at": 1_075_000,  # +75 s: processes gone
        "requested": requested_resources(CONVERSIONS),
    }
    return DeploymentRecord(**{**fields, **extra})


def test_a_finished_batch_run_is_priced_from_start_to_release() -> None:
    cost = run_cost(batch_run(), now_ms=2_000_000, prices=PRICES, busy_ratio=0.5)
    assert cost.wall_ms == 75_000
    assert cost.vcpu_seconds == pytest.approx(150.0)  # (1 + 1) cpu x 75 s
    assert cost.gib_seconds == pytest.approx(187.5)  # (1 + 1.5) GiB x 75 s
    assert cost.slot_seconds == pytest.approx(150.0)  # 1 TaskManager x 2 slots x 75 s
    assert cost.busy_slot_seconds == pytest.approx(60.0)  # 2 slots x 60 s running x 0.5
    assert cost.efficiency == pytest.approx(0.4)  # 60 / 150
    assert cost.idle_tail_ms == 5_000  # released 5 s after the job ended
    assert cost.kpus == 2  # TaskManager: 1 vCPU, 1.61 GB / 4 GB = 0.4 -> 1 KPU; + 1 orchestration KPU
    assert cost.kpu_hours == pytest.approx(2 * 75 / 3600)
    assert cost.cus == pytest.approx(2.0)  # 2 cpu beats 2.5 GiB / 4 = 0.625
    assert cost.cu_hours == pytest.approx(2 * 75 / 3600)
    assert cost.price == pytest.approx(0.0021875)  # 1/24 vCPU-h x 0.04 + 0.0520833 GiB-h x 0.01
    assert cost.aws_price == pytest.approx(0.00458333, rel=1e-5)  # 0.0416667 KPU-h x 0.11
    assert cost.ververica_price == pytest.approx(0.00833333, rel=1e-5)  # 0.0416667 CU-h x 0.2
    assert cost.notes == ()


def test_memory_heavy_taskmanagers_round_up_to_whole_kpus_and_cus_follow_memory() -> None:
    heavy = spec(
        taskManager={"replicas": 2, "resource": {"memory": "10Gi", "cpu": 0.5}},
        job={"jarURI": "local:///job.jar", "parallelism": 2},
    )
    asked = requested_resources(heavy)
    assert (asked.task_managers, asked.job_managers, asked.job_manager_cpu) == (2, 1, 1.0)  # JobManager defaults
    cost = run_cost(batch_run(requested=asked), now_ms=2_000_000, prices=PRICES)
    # 20 GiB = 21.47 GB / 4 GB = 5.37 -> 6 KPUs (1 cpu needs only 1), + 1 orchestration KPU
    assert cost.kpus == 7
    # cpu 1 + 0.5 x 2 = 2; memory 1 GiB (JobManager default) + 20 GiB = 21 GiB / 4 = 5.25 CU, not rounded
    assert cost.cus == pytest.approx(5.25)


def test_taskmanagers_follow_parallelism_and_slots_as_the_runtimes_count_them() -> None:
    five_on_two = spec(flinkConfiguration={"taskmanager.numberOfTaskSlots": "2"}, job={"parallelism": 5})
    asked = requested_resources(five_on_two)
    assert asked.task_managers == 3  # ceil(5 / 2)
    assert asked.task_manager_cpu == 2.0  # a TaskManager with no cpu asks one per slot
    assert asked.task_manager_memory_bytes == 1024 * 2**20  # flinkops' default 1024m
    for each in (
        five_on_two,
        CONVERSIONS,
        spec(taskManager={"replicas": 4}, job={"parallelism": 1}),
        spec(),
        spec(flinkConfiguration={"taskmanager.numberOfTaskSlots": "3"}, job={"parallelism": 7}),
    ):
        assert taskmanagers(each) == taskmanager_count(each, each.flink_configuration)


def test_resources_requests_win_over_the_compact_form_and_the_flink_keys() -> None:
    asked = requested_resources(
        spec(
            flinkConfiguration={"taskmanager.memory.process.size": "4g", "kubernetes.jobmanager.cpu": "0.25"},
            jobManager={"resource": {"memory": "2g"}},
            taskManager={"resources": {"requests": {"cpu": "500m", "memory": "3Gi"}}, "resource": {"cpu": 2}},
        )
    )
    assert (asked.job_manager_cpu, asked.job_manager_memory_bytes) == (0.25, 2 * 2**30)
    assert (asked.task_manager_cpu, asked.task_manager_memory_bytes) == (0.5, 3 * 2**30)


def test_a_window_cuts_every_span_and_a_live_cluster_counts_to_now() -> None:
    live = batch_run(ended_at=None, end_state=None, released_at=None)
    # deploy at 1000 s, now 1100 s, window from 1040 s: 60 s of a cluster still up
    cost = run_cost(live, now_ms=1_100_000, prices=PRICES, live=True, since_ms=1_040_000)
    assert cost.live and cost.wall_ms == 60_000
    assert cost.slot_seconds == pytest.approx(120.0)  # 2 slots x 60 s
    assert cost.idle_tail_ms is None  # the job has not ended


def test_an_ended_job_on_a_cluster_not_yet_released_shows_its_tail_so_far() -> None:
    ended = batch_run(released_at=None)
    cost = run_cost(ended, now_ms=1_073_000, prices=PRICES, live=True)
    assert cost.idle_tail_ms == 3_000 and cost.wall_ms == 73_000


def test_downtime_comes_from_the_run_and_checkpoints_are_counted_where_known() -> None:
    upgrade = batch_run(stopped_at=998_000, running_at=1_004_500, checkpoints=12, checkpointed=True)
    cost = run_cost(upgrade, now_ms=2_000_000, prices=PRICES)
    assert cost.downtime_ms == 6_500 and cost.checkpoints == 12
    unknown = run_cost(batch_run(checkpointed=True), now_ms=2_000_000, prices=PRICES)
    assert unknown.checkpoints is None, "it checkpointed, but how often was not recorded: unknown, not zero"


def test_a_run_recorded_before_these_fields_is_estimated_and_says_so() -> None:
    old = batch_run(requested=None, released_at=None, ended_at=None, end_state=None)
    after = DeploymentRecord(generation=2, job_id="j2", started_at=1_050_000, stopped_at=1_048_000)
    report = deployment_cost(
        [old, after],
        namespace="ads",
        name="x",
        kind="FlinkDeployment",
        now_ms=1_060_000,
        prices=PRICES,
        cluster_up=True,
        requested=requested_resources(CONVERSIONS),
    )
    first, second = report.runs
    assert first.wall_ms == 48_000, "up to the next run's recorded stop"
    assert any("not recorded" in n for n in first.notes) and any("current spec" in n for n in first.notes)
    assert second.live and second.wall_ms == 10_000
    assert report.wall_ms == 58_000
    assert report.total("slot_seconds") == pytest.approx(116.0)  # 2 slots x 58 s


def test_a_price_file_replaces_only_what_it_sets(tmp_path: Path) -> None:
    assert load_prices(None, tmp_path) == DEFAULT_PRICES
    (tmp_path / "prices.yaml").write_text("currency: EUR\nververica:\n  cuHour: 0.3\ncompute:\n  gibHour: null\n")
    prices = load_prices(None, tmp_path)
    assert (prices.currency, prices.cu_hour, prices.vcpu_hour) == ("EUR", 0.3, DEFAULT_PRICES.vcpu_hour)
    assert prices.gib_hour is None, "an explicit null clears a rate"


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("compute:\n  vcpuHour: [1\n", ":3"),  # YAML does not parse: the line it stopped at
        ("currency: USD\ncompute:\n  vcpuHour: cheap\n", ":3 compute.vcpuHour"),
        ("awsManagedFlink:\n  kpuHour: 0.11\n  kpuHours: 1\n", ":3 awsManagedFlink.kpuHours"),
        ("- 1\n", ":1"),
    ],
)
def test_a_bad_price_file_names_the_line_and_field(tmp_path: Path, text: str, where: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(InvalidInput) as caught:
        load_prices(path, tmp_path)
    assert f"{path}{where}" in str(caught.value)


def test_cost_cli_bad_input_exits_2_and_a_name_shows_its_runs(cli: CliRunner, target: TestTarget) -> None:
    missing = cli.invoke(app, ["cost", "nope"])
    assert missing.exit_code == 2 and "nope" in missing.output
    bad = target.home / "bad.yaml"
    bad.write_text("compute: {vcpuHour: -1}\n")
    priced = cli.invoke(app, ["cost", "--prices", str(bad)])
    assert priced.exit_code == 2 and "compute.vcpuHour" in priced.output and "Traceback" not in priced.output
    assert cli.invoke(app, ["cost", "--since", "yesterday"]).exit_code == 2

    doc = {"apiVersion": "flink.apache.org/v1beta1", "kind": "FlinkDeployment", "metadata": {"name": "conv"}}
    [applied] = apply(target, [FlinkDeployment.model_validate({**doc, "spec": CONVERSIONS.model_dump(by_alias=True)})])
    store = target.store()
    stored = store.get(applied.key)
    assert stored is not None
    store.update_status(stored.model_copy(update={"status": FlinkDeploymentStatus(deployment_history=[batch_run()])}))
    shown = cli.invoke(app, ["cost", "conv", "-o", "json"])
    assert shown.exit_code == 0, shown.output
    body = json.loads(shown.output)
    assert body["name"] == "conv" and body["total"]["slotSeconds"] == pytest.approx(150.0)
    assert body["runs"][0]["idleTailMs"] == 5_000 and body["runs"][0]["requested"]["taskSlots"] == 2
    described = cli.invoke(app, ["describe", "conv"], env={"COLUMNS": "250"})
    assert described.exit_code == 0 and "Cost:" in described.output
    [run_line] = [line.split() for line in described.output.splitlines() if "g1 FINISHED" in line]
    assert run_line[2:6] == ["75.0s", "150.0", "187.5", "150.0"], run_line  # wall, vCPU-s, GiB-s, slot-s
    table = cli.invoke(app, ["cost", "-A"])
    assert table.exit_code == 0 and "conv" in table.output and "total" in table.output


def test_a_running_jobs_checkpoints_are_unknown_unless_read_live() -> None:
    running = batch_run(ended_at=None, end_state=None, released_at=None, checkpointed=True)
    assert run_cost(running, now_ms=1_100_000, prices=PRICES, live=True).checkpoints is None
    assert run_cost(running, now_ms=1_100_000, prices=PRICES, live=True, checkpoints=42).checkpoints == 42
    never = batch_run(ended_at=None, end_state=None, released_at=None)
    assert run_cost(never, now_ms=1_100_000, prices=PRICES, live=True).checkpoints == 0
