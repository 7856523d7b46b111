"""The fleet page on a real job: the fraud-scoring example (its YAML, real Flink processes) runs STABLE, ``flinkops
ui`` serves the page in its own process, and Chromium (Debian's, driven by Playwright) opens the overview and the
deployment's page as a person does, takes a savepoint from the page (button, confirmation, confirm) and sees it
arrive in the status. The screenshots are kept in ``.test-artifacts/`` (fleet-overview.png, fleet-detail.png,
fleet-detail-savepoint.png), each checked for what it shows: the page's text at the moment it was taken, and a
PNG of the viewport's width.
"""

from __future__ import annotations

import re
import shutil
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from integration.flinkops_cli import Flinkops

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / ".test-artifacts"
EXAMPLE = REPO / "examples" / "fraud-scoring"
NAME = "fraud-scoring"
WIDTH = 1500


@pytest.fixture(scope="module")
def fraud_yaml(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example, copied so its output lands in a temp dir; checkpoints every 3 s so their age moves."""
    work = tmp_path_factory.mktemp("fraud")
    shutil.copy(EXAMPLE / "fraud_scoring.py", work)
    doc = yaml.safe_load((EXAMPLE / "fraud-scoring.yaml").read_text())
    doc["spec"]["flinkConfiguration"]["execution.checkpointing.interval"] = "3 s"
    doc["spec"]["flinkConfiguration"]["execution.checkpointing.min-pause"] = "1 s"
    doc["spec"]["flinkConfiguration"]["kubernetes.operator.reconcile.interval"] = "1 s"
    doc["spec"]["job"]["args"] += ["--rows-per-second", "200"]
    path = work / "fraud-scoring.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture(scope="module")
def fleet_page(flinkops: Flinkops) -> Iterator[str]:
    """``flinkops ui --port 0`` in its own process; its address."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "flinkops", "ui", "--port", "0"],
        env=flinkops.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        found = re.search(r"(http://127\.0\.0\.1:\d+)/", line)
        assert found, f"flinkops ui did not say where it serves: {line!r}"
        yield found.group(1)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def shot(page: Any, name: str) -> Path:
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    width, height = png_size(path)
    assert width == WIDTH and height >= 300, (width, height)
    assert path.stat().st_size > 20_000, "a page with content, not a blank one"
    return path


def savepoint_nonce(resource: dict[str, Any] | None) -> int | None:
    last = (((resource or {}).get("status") or {}).get("jobStatus") or {}).get("savepointInfo") or {}
    found = (last.get("lastSavepoint") or {}).get("triggerNonce")
    return found if isinstance(found, int) else None


def test_the_page_shows_the_running_example_and_takes_a_savepoint_from_the_browser(
    flinkops: Flinkops, fraud_yaml: Path, fleet_page: str
) -> None:
    started = time.monotonic()
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    assert Path(chromium).exists(), "Debian's chromium is needed (scripts/bootstrap.sh installs it)"
    from playwright.sync_api import expect, sync_playwright

    flinkops.ok("apply", "-f", str(fraud_yaml), "--wait", "--timeout", "240")
    flinkops.wait_lifecycle(NAME, "STABLE")  # STABLE: the job runs and has completed a checkpoint
    ARTIFACTS.mkdir(exist_ok=True)
    flags = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]  # fmt: skip
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=flags)
        try:
            page = browser.new_context(viewport={"width": WIDTH, "height": 700}).new_page()
            page.goto(f"{fleet_page}/")
            row = page.locator("#fleet tbody tr", has_text=NAME)
            # The age of Flink's own last checkpoint: the page asks the JobManager in the background and its
            # script refreshes the table in place (no reload here).
            expect(row.locator("td").nth(5)).to_have_text(re.compile(r"^\d+s$"), timeout=30_000)
            cells = [c.strip() for c in row.locator("td").all_inner_texts()]
            assert cells[:5] == ["default", NAME, "deployment", "STABLE", "RUNNING"], cells
            assert re.fullmatch(r"\d+s", cells[5]), f"checkpoint age {cells[5]!r}"
            assert cells[8] == "2"  # parallelism
            assert row.get_by_role("link", name="Flink UI").get_attribute("href", timeout=5_000)
            shot(page, "fleet-overview.png")

            row.get_by_role("link", name=NAME).click()
            page.wait_for_url(f"{fleet_page}/namespaces/default/flinkdeployments/{NAME}")
            text = page.inner_text("main")
            assert f"default/{NAME}" in text and "STABLE" in text and "first-deploy" in text
            assert "Starting deployment" in text  # an event
            assert re.search(r"Checkpoint age\s+\d+s", text), text
            shot(page, "fleet-detail.png")

            page.get_by_role("button", name="Savepoint…").click()
            assert f"Confirm: savepoint default/{NAME}" in page.inner_text("main")
            assert savepoint_nonce(flinkops.get(NAME)) is None, "the confirmation changes nothing"
            page.get_by_role("button", name="Yes, savepoint").click()
            page.wait_for_url(re.compile(r".*\?done=savepoint$"))
            assert "Take a savepoint of the running job now: requested" in page.inner_text("#done")

            taken = flinkops.wait_for(NAME, lambda r: savepoint_nonce(r) == 1, 120, "the savepoint from the page")
            location = taken["status"]["jobStatus"]["savepointInfo"]["lastSavepoint"]["location"]  # type: ignore[index]
            page.goto(f"{fleet_page}/namespaces/default/flinkdeployments/{NAME}")
            text = page.inner_text("main")
            assert location in text, "the new savepoint is on the page"
            shot(page, "fleet-detail-savepoint.png")

            missing = page.goto(f"{fleet_page}/namespaces/default/flinkdeployments/nope")
            assert missing is not None and missing.status == 404
            assert "There is no FlinkDeployment default/nope" in page.inner_text("main")
        finally:
            browser.close()
    flinkops.ok("delete", NAME)
    print(f"\nfleet page on the real example: {time.monotonic() - started:.1f} s")
