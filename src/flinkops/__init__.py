"""flinkops: run stateful Apache Flink jobs from FlinkDeployment YAML, locally or on Kubernetes.

The public API is what ``__all__`` names here and in ``flinkops.api``; everything else is internal.
"""

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
from flinkops.errors import FlinkopsError, InvalidInput, Problem

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
