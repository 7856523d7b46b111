"""A real Apache Airflow for tests: a private AIRFLOW_HOME on SQLite, ``airflow dags test``, the real scheduler,
dag-processor, triggerer and api-server as child processes, the REST API, and a StatsD listener.

Importable without Airflow (nothing here imports it): the tests that use it run in ``./.venv-airflow``
(:mod:`flinkops.dev.airflow`), where the ``airflow`` command sits next to the interpreter; every Airflow action
is that command in a child process, with the environment :class:`AirflowHome` sets. Facts of Airflow 3.3 this
relies on:

* **Executor**: ``LocalExecutor`` is Airflow 3's only local executor (SequentialExecutor is gone) and works on
  SQLite; ``core.parallelism`` 2 (two cores). ``airflow dags test`` uses no executor at all: it runs each task in
  its own process through the Task SDK's supervisor and, when a task defers, runs the trigger *inline* (the
  trigger is rebuilt from its serialized kwargs, so serialization is exercised) and resumes the task; no
  triggerer is needed.
* **REST API** (``/api/v2``): JWT bearer tokens. With the simple auth manager (the default) and
  ``core.simple_auth_manager_all_admins``, ``GET /auth/token`` hands out an admin token without credentials.
* **Task processes** talk to the api-server's execution API (``core.execution_api_server_url``), so the
  scheduler's tasks need the api-server running.
* **Nothing leaves the machine**: every server binds 127.0.0.1 on a free port; the scheduler's and triggerer's
  log servers (which bind all interfaces) are not started (``--skip-serve-logs``; logs are read from files);
  remote logging, the scheduler's health server, examples and the proxy for local addresses are off.

Processes are stopped by their recorded pid (SIGTERM, then SIGKILL): :class:`flinkops.dev.process.CommandServer`.
Readiness is a condition: the api-server's ``/api/v2/monitor/health`` reports each component healthy (its
heartbeat in the metadata DB), never a fixed sleep.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import httpx

from flinkops.dev.process import HOST, CommandServer, free_port
from support.operator import wait_for

__all__ = [
    "COMPONENTS",
    "AirflowApi",
    "AirflowCluster",
    "AirflowHome",
    "DagTestResult",
    "Metric",
    "StatsdListener",
    "airflow_command",
]

# The long-running parts of Airflow 3, in the order they are started (the api-server first: the others' tasks and
# the readiness checks go through it).
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
_HEALTH_KEYS = {"scheduler": "scheduler", "dag-processor": "dag_processor", "triggerer": "triggerer"}
_FINISHED_RUN_STATES = {"success", "failed"}


def airflow_command() -> Path:
    """The ``airflow`` command of the environment running this (``./.venv-airflow/bin/airflow``)."""
    command = Path(sys.executable).parent / "airflow"
    if not command.exists():
        raise RuntimeError(
            f"no airflow command next to {sys.executable}: run the Airflow tests with ./.venv-airflow/bin/python "
            "(scripts/prefetch.py, run by `make test`, makes it)"
        )
    return command


# ------------------------------------------------------------------------------------------------ StatsD


@dataclass(frozen=True)
class Metric:
    """One StatsD line: ``name:value|type[|@rate][|#tags]``."""

    name: str
    value: float
    type: str  # c (counter), g (gauge), ms (timer), s (set)

    @classmethod
    def parse(cls, line: str) -> Metric | None:
        match = re.fullmatch(r"([^:|]+):([^|]+)\|([a-z]+)(\|.*)?", line.strip())
        if match is None:
            return None
        try:
            value = float(match.group(2))
        except ValueError:
            return None
        return cls(match.group(1), value, match.group(3))


class StatsdListener:
    """A UDP socket on 127.0.0.1 (a free port) that keeps every StatsD line sent to it, read by a thread."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((HOST, 0))
        self._sock.settimeout(0.2)
        self.port: int = self._sock.getsockname()[1]
        self._lines: list[str] = []
        self._arrived = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._read, name=f"statsd-{self.port}", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._closed:
            try:
                datagram = self._sock.recv(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            lines = [line for line in datagram.decode("utf-8", "replace").splitlines() if line.strip()]
            with self._arrived:
                self._lines.extend(lines)
                self._arrived.notify_all()

    def lines(self) -> list[str]:
        with self._arrived:
            return list(self._lines)

    def metrics(self, name: str) -> list[Metric]:
        """Every received metric called ``name`` (with its prefix, say ``airflow.scheduler_heartbeat``)."""
        parsed = (Metric.parse(line) for line in self.lines())
        return [metric for metric in parsed if metric is not None and metric.name == name]

    def wait_for(self, name: str, timeout: float = 60.0, where: Callable[[Metric], bool] = lambda _: True) -> Metric:
        """The first metric called ``name`` for which ``where`` holds, waiting up to ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                for line in self._lines:
                    metric = Metric.parse(line)
                    if metric is not None and metric.name == name and where(metric):
                        return metric
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = sorted({line.split(":", 1)[0] for line in self._lines})
                    raise AssertionError(f"no StatsD metric {name} within {timeout:.0f}s; names seen: {seen}")
                self._arrived.wait(left)

    def close(self) -> None:
        self._closed = True
        self._thread.join(timeout=5)
        self._sock.close()

    def __enter__(self) -> StatsdListener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ------------------------------------------------------------------------------------------------ the home


_CONNECT_ARGS_MODULE = "flinkops_airflow_test_db"
#: How long an Airflow process waits for SQLite's write lock; the API client waits longer than that for an answer.
SQLITE_LOCK_WAIT = 60


@dataclass(frozen=True)
class DagTestResult:
    """What ``airflow dags test`` did: its exit code and output, and the run it made as the DB records it."""

    returncode: int
    output: str
    run_id: str | None
    state: str | None
    task_states: dict[str, str]
    seconds: float


class AirflowHome:
    """A private AIRFLOW_HOME: ``airflow.cfg``, ``airflow.db`` (SQLite), ``dags/``, ``logs/`` and the
    components' own directories under ``run/``. :meth:`env` is the environment every Airflow process gets
    (the caller's ``AIRFLOW*`` variables are dropped, so a developer's own Airflow settings never leak in)."""

    def __init__(
        self,
        root: Path,
        *,
        dags_folder: Path | None = None,
        statsd_port: int | None = None,
        parallelism: int = 2,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        # SQLite lets one writer in at a time and Python's driver gives up after 5 s ("database is locked"), which
        # kills the scheduler when the machine is busy (the main test session runs beside this one). Every
        # Airflow process here waits up to a minute for the lock instead, through [database]
        # sql_alchemy_connect_args (an import path: this module, on PYTHONPATH).
        (self.root / "run").mkdir(exist_ok=True)
        connect_args = f"CONNECT_ARGS = {{'timeout': {SQLITE_LOCK_WAIT}}}\n"
        (self.root / "run" / f"{_CONNECT_ARGS_MODULE}.py").write_text(connect_args)
        self.dags_folder = (dags_folder or self.root / "dags").resolve()
        self.dags_folder.mkdir(parents=True, exist_ok=True)
        self.database = self.root / "airflow.db"
        self.api_port = free_port()
        self.api_url = f"http://{HOST}:{self.api_port}"
        self.statsd_port = statsd_port
        self.parallelism = parallelism
        self._extra_env = dict(extra_env or {})
        self._secrets = {"api": secrets.token_urlsafe(32), "jwt": secrets.token_urlsafe(32)}

    def env(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
        local = f"{HOST},localhost"
        path = [str(self.root / "run"), *filter(None, [env.get("PYTHONPATH")])]
        env.update(
            {
                "PYTHONPATH": os.pathsep.join(path),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": f"{_CONNECT_ARGS_MODULE}.CONNECT_ARGS",
                "AIRFLOW_HOME": str(self.root),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.database}",
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),
                # Tests trigger their runs themselves; a DAG with a schedule is theirs to pause.
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
                "AIRFLOW__API__HOST": HOST,
                "AIRFLOW__API__PORT": str(self.api_port),
                "AIRFLOW__API__BASE_URL": self.api_url,
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API__SECRET_KEY": self._secrets["api"],
                "AIRFLOW__API_AUTH__JWT_SECRET": self._secrets["jwt"],
                "AIRFLOW__LOGGING__REMOTE_LOGGING": "False",
                "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
                # A DAG file added while the dag-processor runs is found within seconds, not 5 minutes.
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
                # A triggerer that stopped hands its triggers to another after 10 s without a heartbeat (30 s by
                # default): a test restarting the triggerer waits that long once.
                "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "10",
                "AIRFLOW__METRICS__STATSD_ON": str(self.statsd_port is not None),
                "AIRFLOW__METRICS__STATSD_HOST": HOST,
                "AIRFLOW__METRICS__STATSD_PORT": str(self.statsd_port or 8125),
                "AIRFLOW__METRICS__STATSD_PREFIX": "airflow",
                # Belts and braces: no usage statistics, no proxy between the components on this machine.
                "SCARF_ANALYTICS": "false",
                "DO_NOT_TRACK": "true",
                "NO_PROXY": local,
                "no_proxy": local,
            }
        )
        env.update(self._extra_env)
        return env

    def add_env(self, **variables: str) -> None:
        """More environment for every Airflow process started from now on (a connection naming the api-server)."""
        self._extra_env.update(variables)

    def airflow(self, *args: str, timeout: float = 300.0, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``airflow ARGS`` in this home; output (stdout and stderr together) in ``.stdout``."""
        done = subprocess.run(
            [str(airflow_command()), *args],
            cwd=self.root,
            env=self.env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"`airflow {' '.join(args)}` exited {done.returncode}:\n{done.stdout[-4000:]}")
        return done

    def migrate(self) -> None:
        """Create (or upgrade) the metadata database."""
        self.airflow("db", "migrate")

    def providers(self) -> list[dict[str, Any]]:
        """``airflow providers list`` as rows (package_name, description, version)."""
        out = self.airflow("providers", "list", "--output", "json").stdout
        rows: list[dict[str, Any]] = json.loads(out[out.index("[") :])
        return rows

    def dags_test(self, dag_id: str, *, conf: Mapping[str, Any] | None = None, timeout: float = 600.0) -> DagTestResult:
        """``airflow dags test DAG_ID``: one run, tasks in-process, triggers inline; then the run's state and its
        task instances' states from the metadata database. Never raises on the run's failure (its result says)."""
        args = ["dags", "test", dag_id]
        if conf is not None:
            args += ["--conf", json.dumps(dict(conf))]
        started = time.monotonic()
        done = self.airflow(*args, timeout=timeout, check=False)
        seconds = time.monotonic() - started
        run = self.latest_run(dag_id)
        run_id, state = run if run else (None, None)
        states = self.task_states(dag_id, run_id) if run_id else {}
        return DagTestResult(done.returncode, done.stdout, run_id, state, states, seconds)

    # ------------------------------------------------------------------ the metadata DB (read-only, test side)

    def _query(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with contextlib.closing(sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=30)) as db:
            return db.execute(sql, params).fetchall()

    def latest_run(self, dag_id: str) -> tuple[str, str] | None:
        """(run_id, state) of the newest run of ``dag_id``."""
        rows = self._query("SELECT run_id, state FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", (dag_id,))
        return (rows[0][0], rows[0][1]) if rows else None

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        """task_id (``task_id[i]`` for mapped ones) → state, for one run."""
        rows = self._query(
            "SELECT task_id, map_index, state FROM task_instance WHERE dag_id = ? AND run_id = ?", (dag_id, run_id)
        )
        return {(task if index < 0 else f"{task}[{index}]"): state for task, index, state in rows}

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        """The XCom value a task pushed (JSON-decoded), or None."""
        rows = self._query(
            "SELECT value FROM xcom WHERE dag_id = ? AND run_id = ? AND task_id = ? AND key = ? AND map_index = -1",
            (dag_id, run_id, task_id, key),
        )
        return json.loads(rows[0][0]) if rows and rows[0][0] is not None else None

    # ------------------------------------------------------------------ the long-running components

    @contextlib.contextmanager
    def cluster(self, *, timeout: float = 180.0) -> Iterator[AirflowCluster]:
        """The api-server, scheduler, dag-processor and triggerer, running until the block ends."""
        cluster = AirflowCluster(self)
        try:
            cluster.start(timeout=timeout)
            yield cluster
        finally:
            cluster.stop()


class AirflowProcess(CommandServer):
    """One Airflow component (``airflow <component>``), its log in ``run/<component>/<component>.log``."""

    STOP_GRACE_SECONDS: ClassVar[float] = 30.0

    def __init__(self, home: AirflowHome, component: str, ready: Callable[[], bool]) -> None:
        self.NAME = f"airflow {component}"
        self.PID_FILE = f"{component}.pid"
        self.LOG_FILE = f"{component}.log"
        self.POLL_SECONDS = 0.5
        data_dir = home.root / "run" / component
        data_dir.mkdir(parents=True, exist_ok=True)
        argv = [str(airflow_command()), component]
        if component in ("scheduler", "triggerer"):
            argv.append("--skip-serve-logs")  # the log server binds every interface; the tests read the files
        port = home.api_port if component == "api-server" else 0
        super().__init__(data_dir, port, lambda: argv, env=home.env())
        self.component = component
        self._ready = ready

    @property
    def endpoint(self) -> str:
        return f"{HOST}:{self.port}" if self.port else self.NAME

    def healthy(self) -> bool:
        return self._ready()

    def stop(self, timeout: float | None = None) -> bool:
        """Stop the component and then whatever it started that is still there: the scheduler's LocalExecutor
        workers outlive a scheduler that had to be killed (SIGKILL after the grace). The component runs in a
        session of its own (``_spawn``), so its process group holds exactly what it started."""
        pid = self.pid()
        stopped = super().stop(timeout)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        return stopped

    def launch(self) -> None:
        """Start the process without waiting (``start`` then adopts it and waits until it is ready)."""
        if self.pid() is None:
            self._launch()

    def log(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except OSError:
            return ""


class AirflowCluster:
    """The four components of one :class:`AirflowHome`, with an :class:`AirflowApi` client on the api-server."""

    def __init__(self, home: AirflowHome) -> None:
        self.home = home
        self.api = AirflowApi(home.api_url)
        self.processes = {
            component: AirflowProcess(home, component, self._ready_check(component)) for component in COMPONENTS
        }
        self.started_seconds: float | None = None

    def _ready_check(self, component: str) -> Callable[[], bool]:
        if component == "api-server":
            return lambda: self.api.health() is not None
        key = _HEALTH_KEYS[component]
        return lambda: ((self.api.health() or {}).get(key) or {}).get("status") == "healthy"

    def start(self, timeout: float = 180.0) -> None:
        """Start every component and wait until the api-server reports each healthy (stopping all on failure)."""
        started = time.monotonic()
        try:
            api = self.processes["api-server"]
            api.start(timeout=timeout)
            others = [process for name, process in self.processes.items() if name != "api-server"]
            for process in others:
                process.launch()
            for process in others:
                process.start(timeout=max(1.0, timeout - (time.monotonic() - started)))
        except BaseException:
            self.stop()
            raise
        self.started_seconds = time.monotonic() - started

    def stop(self) -> None:
        """Stop every component by its recorded pid, the api-server last (the others report to it)."""
        for component in reversed(COMPONENTS):
            self.processes[component].stop()
        self.api.close()

    def pids(self) -> dict[str, int]:
        return {name: pid for name, process in self.processes.items() if (pid := process.pid()) is not None}

    def memory_mb(self) -> dict[str, float]:
        """Resident memory of each component with all its child processes (task runners, parsers), in MB."""
        import psutil  # in the Airflow environment (Airflow needs it); imported here to keep this module light

        sizes: dict[str, float] = {}
        for name, pid in self.pids().items():
            with contextlib.suppress(psutil.NoSuchProcess):
                root = psutil.Process(pid)
                total = 0
                for proc in [root, *root.children(recursive=True)]:
                    with contextlib.suppress(psutil.NoSuchProcess):
                        total += proc.memory_info().rss
                sizes[name] = total / (1024 * 1024)
        return sizes


# ------------------------------------------------------------------------------------------------ REST API


class AirflowApi:
    """Airflow 3's public REST API (``/api/v2``) with a JWT from ``GET /auth/token`` (all-admins mode)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        # Longer than an API server request may wait for SQLite's lock on a busy machine (a timed-out POST may still
        # have created its run: waiting is the only safe answer).
        self._client = httpx.Client(base_url=base_url, timeout=SQLITE_LOCK_WAIT + 30.0, trust_env=False)
        self._token: str | None = None

    def close(self) -> None:
        self._client.close()

    def health(self) -> dict[str, Any] | None:
        """``/api/v2/monitor/health`` (no token needed), or None while the api-server does not answer."""
        try:
            response = self._client.get("/api/v2/monitor/health", timeout=5.0)
        except httpx.HTTPError:
            return None
        if response.status_code != 200:
            return None
        body: dict[str, Any] = response.json()
        return body

    def token(self) -> str:
        if self._token is None:
            response = self._client.get("/auth/token")
            response.raise_for_status()
            self._token = str(response.json()["access_token"])
        return self._token

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """``method /api/v2<path>`` with the token; the decoded JSON body (AssertionError with the body on >= 400)."""
        headers = {"Authorization": f"Bearer {self.token()}"}
        response = self._client.request(method, f"/api/v2{path}", headers=headers, **kwargs)
        if response.status_code >= 400:
            raise AssertionError(f"{method} {path}: HTTP {response.status_code}: {response.text[:2000]}")
        return response.json() if response.content else None

    def dag(self, dag_id: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = self.request("GET", f"/dags/{dag_id}")
        except AssertionError as exc:
            if "HTTP 404" in str(exc):
                return None
            raise
        return found

    def wait_for_dag(self, dag_id: str, timeout: float = 120.0) -> dict[str, Any]:
        """Wait until the dag-processor has parsed ``dag_id`` (the API knows it)."""
        return wait_for(f"DAG {dag_id} to be parsed", lambda: self.dag(dag_id), timeout=timeout, interval=0.5)

    def trigger(self, dag_id: str, *, conf: Mapping[str, Any] | None = None) -> str:
        """Start a run of ``dag_id`` now; its run_id."""
        body = {"logical_date": None, "conf": dict(conf or {})}
        for attempt in range(1, 6):
            try:
                run: dict[str, Any] = self.request("POST", f"/dags/{dag_id}/dagRuns", json=body)
                return str(run["dag_run_id"])
            except AssertionError as exc:
                # SQLite has one writer at a time: with the scheduler, the dag-processor and tasks writing, the
                # API server may give up on its lock ("Database error", rolled back, so asking again is safe).
                if "HTTP 500" not in str(exc) or "Database error" not in str(exc) or attempt == 5:
                    raise
        raise AssertionError("unreachable")

    def run_state(self, dag_id: str, run_id: str) -> str:
        return str(self.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"])

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 300.0) -> str:
        """Wait until the run is finished (success or failed); its state."""

        def finished() -> str | None:
            state = self.run_state(dag_id, run_id)
            return state if state in _FINISHED_RUN_STATES else None

        return wait_for(f"run {run_id} of {dag_id} to finish", finished, timeout=timeout, interval=0.5)

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        """task_id (``task_id[i]`` for mapped ones) → state."""
        found = self.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 1000})
        return {
            (ti["task_id"] if ti["map_index"] < 0 else f"{ti['task_id']}[{ti['map_index']}]"): ti["state"]
            for ti in found["task_instances"]
        }

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        """An XCom's value as the API returns it (deserialized)."""
        entry = self.request(
            "GET",
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}",
            params={"deserialize": "true", "stringify": "false"},
        )
        return entry["value"]
