"""The "Flink UI" button on a flinkops task: the web UI of the cluster its job runs on.

The operator records the URL (as XCom ``flink_ui_url``) as soon as the JobManager answers; Airflow asks this link
for it when the task's try ends or defers (``get_link`` runs in the worker) and shows it from then on.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperatorLink

__all__ = ["FLINK_UI_XCOM", "FlinkUILink"]

FLINK_UI_XCOM = "flink_ui_url"


class FlinkUILink(BaseOperatorLink):
    name = "Flink UI"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        from airflow.sdk.execution_time.xcom import XCom

        url = XCom.get_value(ti_key=ti_key, key=FLINK_UI_XCOM)
        return str(url) if url else ""
