"""``flinkops crds`` through the real CLI in a subprocess: both CRDs as multi-document YAML, a ``List`` with ``-o
json``, and an unknown format refused (exit 2) with help that shows how to install them. What the generated CRDs
contain is tests/unit/test_crds.py's job.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import flinkops
from flinkops.api.crds import custom_resource_definitions

pytestmark = pytest.mark.integration


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flinkops", *args],
        # The flinkops this test imported (a worktree's, not whatever the environment installed).
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "200", "PYTHONPATH": str(Path(flinkops.__file__).parents[1])},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_prints_both_crds_as_multi_document_yaml() -> None:
    result = cli("crds")

    assert result.returncode == 0, result.stderr
    assert list(yaml.safe_load_all(result.stdout)) == custom_resource_definitions()


def test_cli_prints_a_list_with_o_json() -> None:
    result = cli("crds", "-o", "json")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"apiVersion": "v1", "kind": "List", "items": custom_resource_definitions()}


def test_cli_rejects_an_unknown_format_and_its_help_shows_how_to_install() -> None:
    bad = cli("crds", "-o", "table")
    assert bad.returncode == 2
    assert "unknown format" in bad.stderr

    help_text = cli("crds", "--help").stdout
    assert "flinkops crds | kubectl apply" in help_text
