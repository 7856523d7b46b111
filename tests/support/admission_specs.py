"""A valid FlinkDeployment as ``kubectl apply`` sends it (S3 state, savepoint upgrades, pod resources): the document
the admission webhook's tests and its benchmark start from, and change one field of to make it invalid.

Called by: tests/unit/test_admission.py, tests/kubernetes/test_webhook_live.py, benchmarks/webhook.py.
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["valid_deployment"]

_DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "flink.apache.org/v1beta1",
    "kind": "FlinkDeployment",
    "metadata": {"name": "fraud"},
    "spec": {
        "image": "flink:2.2",
        "flinkVersion": "v2_2",
        "serviceAccount": "flink",
        "flinkConfiguration": {
            "state.checkpoints.dir": "s3://state/fraud/checkpoints",
            "state.savepoints.dir": "s3://state/fraud/savepoints",
            "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
        },
        "jobManager": {"resource": {"memory": "2048m", "cpu": 1}},
        "taskManager": {"resource": {"memory": "2048m", "cpu": 1}},
        "job": {"jarURI": "local:///opt/flink/usrlib/fraud.jar", "parallelism": 2, "upgradeMode": "savepoint"},
    },
}


def valid_deployment(**metadata: Any) -> dict[str, Any]:
    """A fresh copy of the document, its ``metadata`` updated with ``metadata``."""
    doc = copy.deepcopy(_DEPLOYMENT)
    doc["metadata"].update(metadata)
    return doc
