"""A valid FlinkDeployment as ``kubectl apply`` sends it (S3 state, savepoint upgrades, pod resources): the document
the admission webhook's tests and its benchmark start from, and change one field of to make it invalid; and the
ValidatingWebhookConfiguration the chart installs, with a URL client config (the webhook runs on this host, no
Service).

Called by: tests/unit/test_admission.py, tests/kubernetes/test_webhook_live.py, benchmarks/webhook.py.
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["url_webhook_configuration", "valid_deployment"]

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


def url_webhook_configuration(name: str, namespace: str, port: int, ca_bundle: str | None = None) -> dict[str, Any]:
    """What the chart installs for the watched ``namespace``, calling ``https://127.0.0.1:port/validate``
    (``ca_bundle``: base64 PEM of the CA the API server trusts for it; None leaves it to be patched in)."""
    client: dict[str, Any] = {"url": f"https://127.0.0.1:{port}/validate"}
    if ca_bundle is not None:
        client["caBundle"] = ca_bundle
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [
            {
                "name": "validate.flinkops.flink.apache.org",
                "admissionReviewVersions": ["v1"],
                "sideEffects": "None",
                "failurePolicy": "Fail",
                "timeoutSeconds": 5,
                "clientConfig": client,
                "rules": [
                    {
                        "apiGroups": ["flink.apache.org"],
                        "apiVersions": ["*"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": ["flinkdeployments", "flinksessionjobs"],
                        "scope": "Namespaced",
                    }
                ],
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
                "objectSelector": {
                    "matchExpressions": [{"key": "flink.apache.org/canary", "operator": "NotIn", "values": ["true"]}]
                },
            }
        ],
    }
