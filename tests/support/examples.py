"""Run the repository's example YAML against test services: same documents, test endpoints.

The examples name the default ``flinkops dev`` ports (Kafka 127.0.0.1:9092, ZooKeeper 127.0.0.1:2181) and a
jar path relative to their own directory. Tests run their services on free ports, so :func:`example` writes a
copy with those endpoints and an absolute jar path, plus any configuration overrides (a shorter checkpoint
interval, say); everything else is the example as users get it.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
KAFKA_DEFAULT = "127.0.0.1:9092"
ZOOKEEPER_DEFAULT = "127.0.0.1:2181"


def example(
    relative: str,
    into: Path,
    *,
    bootstrap: str | None = None,
    quorum: str | None = None,
    jar: Path | None = None,
    config: Mapping[str, Mapping[str, str]] | None = None,
    args: Mapping[str, list[str]] | None = None,
) -> Path:
    """A copy of ``examples/<relative>`` with test endpoints; ``config``/``args`` override per resource name."""
    source = EXAMPLES / relative
    documents: list[dict[str, Any]] = [d for d in yaml.safe_load_all(source.read_text()) if d]
    for doc in documents:
        name = doc["metadata"]["name"]
        spec = doc["spec"]
        conf = spec.setdefault("flinkConfiguration", {})
        if quorum and conf.get("high-availability.zookeeper.quorum") == ZOOKEEPER_DEFAULT:
            conf["high-availability.zookeeper.quorum"] = quorum
        conf.update((config or {}).get(name, {}))
        job = spec.get("job")
        if job is None:
            continue
        if bootstrap:
            job["args"] = [bootstrap if a == KAFKA_DEFAULT else a for a in job.get("args", [])]
        if name in (args or {}):
            job["args"] = list((args or {})[name])
        uri = str(job.get("jarURI", ""))
        if jar is not None and uri.endswith(".jar") and "://" not in uri:
            job["jarURI"] = jar.as_uri()
    target = into / source.name
    target.write_text("\n---\n".join(json.dumps(d) for d in documents))
    return target


def arg(args: list[str], flag: str) -> str:
    """The value after ``flag`` in a job's argument list."""
    return args[args.index(flag) + 1]


@cache
def example_module(relative: str) -> ModuleType:
    """An example's Python script (``conversions-batch/generate.py``) loaded as a module: its directory name is not
    importable. One load per process."""
    path = EXAMPLES / relative
    spec = importlib.util.spec_from_file_location("flinkops_example_" + path.parent.name.replace("-", "_"), path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
