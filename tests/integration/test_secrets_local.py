"""Secret references on the local runtime with real Flink and a real OpenBao dev server: the job gets the values
(from OpenBao, the controller's environment and a file) through a deploy, a savepoint upgrade, a JobManager SIGKILL
and a start whose secret is missing, and afterwards no value is found in any file under FLINKOPS_HOME (the SQLite
store, cluster records, rendered configuration, Flink's and the controller's logs), nor in what ``get``, ``describe``
and ``logs`` print.

The probe job (tests/jobs/java/.../SecretProbeJob.java) writes, at each start, the sha256 of the secret job argument
and of the secret configuration values as its job sees them: equal to the values' digests, they prove delivery
without the values being written anywhere.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import signal
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from flinkops.api.secrets import parse_reference
from flinkops.secrets import SecretResolver, SecretUnavailable
from integration.flinkops_cli import Flinkops, application, running, status_of
from support.openbao import OpenBao
from support.steps import Steps
from support.testjobs import SECRET_PROBE_JOB

pytestmark = pytest.mark.integration

NAME = "secret-probe"
CONFIG_KEYS = ("probe.env.secret", "probe.file.token")


@pytest.fixture
def bao(tmp_path: Path) -> Iterator[OpenBao]:
    with OpenBao(tmp_path / "bao") as server:
        yield server


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def probe_lines(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    return [dict(item.split("=", 1) for item in line.split()) for line in path.read_text().splitlines()]


def test_vault_references_resolve_from_a_real_openbao_and_errors_say_what_to_do(bao: OpenBao) -> None:
    value = secrets.token_hex(16)
    bao.put("payments/kafka", password=value)
    resolver = SecretResolver(bao.env)
    assert resolver.resolve(parse_reference("${secret:vault:secret/payments/kafka#password}")) == value
    refused = {
        "${secret:vault:secret/payments/kafka#user}": "has no key 'user'",
        "${secret:vault:secret/payments/nope#password}": "no such secret at secret/payments/nope",
        "${secret:vault:kv/payments/kafka#password}": "a KV version 2 mount 'kv'?",
    }
    for text, said in refused.items():
        with pytest.raises(SecretUnavailable, match=re.escape(said)):
            resolver.resolve(parse_reference(text))
    with pytest.raises(SecretUnavailable, match="does not accept the token"):
        SecretResolver({**bao.env, "VAULT_TOKEN": "not-the-token"}).resolve(parse_reference(text))


def leaks(home: Path, values: dict[str, str], printed: Sequence[str] = ()) -> list[str]:
    """Where any of ``values`` is found: files under ``home`` (read as bytes) and ``printed`` CLI output."""
    found = []
    for path in home.rglob("*"):
        try:
            if not path.is_file() or path.is_symlink():
                continue
            data = path.read_bytes()
        except FileNotFoundError:  # a checkpoint Flink subsumed between the listing and the read
            continue
        found += [f"{what} in {path}" for what, value in values.items() if value.encode() in data]
    return found + [f"{what} printed" for text in printed for what, value in values.items() if value in text]


def test_secrets_reach_the_job_and_nothing_else(tmp_path: Path, testjobs: Path, bao: OpenBao) -> None:
    steps = Steps("secrets: deploy, savepoint upgrade, JobManager killed, missing secret, delete, scan")
    from_vault, from_env, from_file = (f"{kind}-{secrets.token_hex(12)}" for kind in ("vault", "env", "file"))
    bao.put("flinkops/probe", password=from_vault)
    secret_file = tmp_path / "token"
    secret_file.write_text(from_file + "\n")
    home = tmp_path / "home"
    flinkops = Flinkops(home)
    flinkops.extra_env.update({**bao.env, "PROBE_SECRET": from_env})
    probe = tmp_path / "probe.txt"
    config = {
        "probe.env.secret": "${secret:env:PROBE_SECRET}",
        "probe.file.token": f"${{secret:file:{secret_file}}}",
        "execution.checkpointing.interval": "1 s",
        "kubernetes.operator.reconcile.interval": "1 s",
        "flinkops.upgrade.prestart": "false",
    }

    def spec(rate: int, vault_key: str = "password") -> Path:
        args = [
            f"--probe-out={probe}",
            f"--probe-keys={','.join(CONFIG_KEYS)}",
            f"--probe-password=${{secret:vault:secret/flinkops/probe#{vault_key}}}",
            "--rate",
            str(rate),
        ]
        directory = tmp_path / str(rate)
        directory.mkdir(exist_ok=True)
        return application(directory, NAME, testjobs, SECRET_PROBE_JOB, args, config, upgradeMode="savepoint")

    values = {"vault": from_vault, "env": from_env, "file": from_file, "vault token": bao.token}
    expected = {"password": digest(from_vault), CONFIG_KEYS[0]: digest(from_env), CONFIG_KEYS[1]: digest(from_file)}
    flinkops.ok("controller", "start")
    try:
        with steps("deploy: the job sees the three values"):
            flinkops.ok("apply", "-f", str(spec(20)), "--wait", "--timeout", "120")
            assert probe_lines(probe) == [expected]
            assert (home / "clusters" / "default" / NAME / "conf" / "config.yaml").is_file()
            assert leaks(home, values) == [], "running: rendered config, cluster record, store, logs"

        with steps("savepoint upgrade: the new job sees them again"):
            flinkops.ok("apply", "-f", str(spec(30)), "--wait", "--timeout", "120")
            upgraded = status_of(flinkops.get(NAME))
            assert "savepoint-" in upgraded["jobStatus"]["upgradeSavepointPath"]
            assert probe_lines(probe) == [expected, expected]

        with steps("JobManager SIGKILL: the recovered job is started with the values resolved again"):
            (jobmanager,) = flinkops.processes(NAME, "jobmanager")
            os.kill(jobmanager, signal.SIGKILL)
            flinkops.wait_for(NAME, lambda _: len(probe_lines(probe)) == 3, 90, "the recovered job's start")
            assert probe_lines(probe)[-1] == expected
            flinkops.wait_lifecycle(NAME, "STABLE", timeout=90)
            # The lifecycle stays STABLE through a recovery: wait for the recovered job itself.
            flinkops.wait_for(NAME, lambda r: status_of(r).get("jobStatus", {}).get("state") == "RUNNING", 90)
            jm_logs = (home / "clusters" / "default" / NAME / "log" / "jobmanager-0").glob("*.log")
            flink_log = "".join(p.read_text(errors="replace") for p in jm_logs)
            assert "Loading dynamic configuration property: probe.env.secret, ******" in flink_log
            assert "****** (sensitive information)" in flink_log, "Flink masks the -D and --probe-password= arguments"
            assert leaks(home, values, [flinkops.run("logs", NAME).stdout]) == []

        with steps("a missing secret fails the upgrade with an error naming the reference, the job runs on"):
            running_job = status_of(flinkops.get(NAME))["jobStatus"]["jobId"]
            (jobmanager,) = flinkops.processes(NAME, "jobmanager")
            flinkops.ok("apply", "-f", str(spec(40, vault_key="nope")))
            failed = flinkops.wait_for(NAME, lambda r: "no key 'nope'" in (status_of(r).get("error") or ""), 60)
            error = status_of(failed)["error"]
            assert "${secret:vault:secret/flinkops/probe#nope}" in error, error
            job = status_of(flinkops.get(NAME))["jobStatus"]
            assert (job["jobId"], job["state"]) == (running_job, "RUNNING"), "not stopped for a start that can't be"
            assert flinkops.processes(NAME, "jobmanager") == [jobmanager], "its JobManager was not replaced"

        with steps("delete"):
            printed = [flinkops.run(*cmd).stdout for cmd in (("get", "-A", "-o", "json"), ("describe", NAME))]
            assert "no key 'nope'" in printed[1], "describe shows the error (and is scanned)"
            pids = flinkops.cluster_pids(NAME)
            flinkops.ok("delete", NAME)
            deadline = time.monotonic() + 30
            while any(running(p) for p in pids) and time.monotonic() < deadline:
                time.sleep(0.2)
            assert not any(running(p) for p in pids)
    finally:
        flinkops.run("controller", "stop")
        flinkops.kill_everything()

    with steps("scan: no value in any file under FLINKOPS_HOME or in what the CLI printed"):
        names = {p.name for p in home.rglob("*")}
        assert "controller.log" in names and "flinkops.db" in names, "the controller's log and the store are scanned"
        assert leaks(home, values, printed) == []
