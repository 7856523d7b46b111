"""flinkops: run stateful Apache Flink jobs from FlinkDeployment YAML, locally or on Kubernetes.

The public API is what ``__all__`` names here and in ``flinkops.api``; everything else is internal. The resource
models load on first use (PEP 562): every ``flinkops`` command imports this package, and ``flinkops get`` must
not pay for building the pydantic models it does not need.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from flinkops.errors import FlinkopsError, InvalidInput, Problem

if TYPE_CHECKING:
    from flinkops.api.models import (
        API_VERSION,
        FlinkDeployment,
        FlinkDeploymentSpec,
        FlinkDeploymentStatus,
        FlinkSessionJob,
        FlinkSessionJobSpec,
        FlinkSessionJobStatus,
        LifecycleState,
    )

__version__ = "0.1.0"

__all__ = [
    "API_VERSION",
    "FlinkDeployment",
    "FlinkDeploymentSpec",
    "FlinkDeploymentStatus",
    "FlinkSessionJob",
    "FlinkSessionJobSpec",
    "FlinkSessionJobStatus",
    "FlinkopsError",
    "InvalidInput",
    "LifecycleState",
    "Problem",
    "__version__",
]

_FROM_MODELS = frozenset(
    {
        "API_VERSION",
        "FlinkDeployment",
        "FlinkDeploymentSpec",
        "FlinkDeploymentStatus",
        "FlinkSessionJob",
        "FlinkSessionJobSpec",
        "FlinkSessionJobStatus",
        "LifecycleState",
    }
)


def __getattr__(name: str) -> Any:
    if name in _FROM_MODELS:
        return getattr(importlib.import_module("flinkops.api.models"), name)
    raise AttributeError(f"module 'flinkops' has no attribute {name!r}")
