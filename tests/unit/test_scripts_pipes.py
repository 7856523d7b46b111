"""The shell scripts behind ``make`` run with ``set -o pipefail``: a pipeline whose last command stops reading
early (``head``, ``grep -q``) kills the writer with SIGPIPE once the writer has more than a pipe buffer to say,
and the script then fails with exit 141 after its work is done. ``make demo`` did that once the committed
scores outgrew 64 KiB. The demo script runs here for real, with a stand-in for the CLI (no Flink)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# A pipeline stage that may exit before reading all of its input.
_EARLY_EXIT = re.compile(r"\|\s*(head\b|grep\s+(-\w*[qm]|--quiet|--max-count)|tail\s+-n\s*\+?\d+\s*-q)")

_FAKE_CLI = """#!/usr/bin/env bash
# Stands in for flinkops: every command succeeds; `get NAME -o json` prints the one field the demo reads.
case " $* " in
  *" get fraud-scoring -o json "*) echo '{"status": {"clusterInfo": {"rest-url": "http://127.0.0.1:8081"}}}' ;;
  *) echo "flinkops $*" ;;
esac
"""


def _demo_checkout(tmp_path: Path, scores: list[str]) -> Path:
    """A copy of the demo script with the files it touches: a fake CLI in .venv and committed score files."""
    (tmp_path / "scripts").mkdir()
    shutil.copy2(ROOT / "scripts" / "demo.sh", tmp_path / "scripts" / "demo.sh")
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "flinkops").write_text(_FAKE_CLI)
    (bin_dir / "flinkops").chmod(0o755)
    (bin_dir / "python").symlink_to(sys.executable)
    out = tmp_path / "examples" / "fraud-scoring" / "output" / "scores"
    out.mkdir(parents=True)
    half = len(scores) // 2
    (out / "part-0-0").write_text("".join(f"{line}\n" for line in scores[:half]))
    (out / "part-1-0").write_text("".join(f"{line}\n" for line in scores[half:]))
    return tmp_path


def test_the_demo_prints_the_top_scores_and_succeeds_when_the_output_is_larger_than_a_pipe_buffer(
    tmp_path: Path,
) -> None:
    # ~3 MB of scored windows: far more than a pipe holds (64 KiB on Linux), as after a few minutes of the demo.
    scores = [
        f"card-{i:06d},2026-01-01 00:00:00,2026-01-01 00:30:00,3,{i},2,{i},{(i * 7919) % 100000}" for i in range(40000)
    ]
    checkout = _demo_checkout(tmp_path, scores)
    env = {**os.environ, "FLINKOPS_HOME": str(tmp_path / "home")}
    done = subprocess.run(
        ["bash", str(checkout / "scripts" / "demo.sh")], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    best = sorted(scores, key=lambda line: -int(line.rsplit(",", 1)[1]))[:5]
    shown = done.stdout.split("card_id,window_start,window_end,", 1)[1].splitlines()[1:6]
    assert [int(line.rsplit(",", 1)[1]) for line in shown] == [int(line.rsplit(",", 1)[1]) for line in best]
    assert "(40000 scored card windows so far; highest scores first)" in done.stdout
    assert "Flink UI:        http://127.0.0.1:8081" in done.stdout


def test_no_script_under_pipefail_ends_a_pipeline_with_a_reader_that_stops_early() -> None:
    scripts = [*sorted((ROOT / "scripts").glob("*.sh")), ROOT / ".ci" / "run", ROOT / "Makefile"]
    found = []
    for script in scripts:
        text = script.read_text()
        if "pipefail" not in text and script.name != "Makefile":
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if not line.lstrip().startswith("#") and _EARLY_EXIT.search(line):
                found.append(f"{script.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not found, "a reader that exits early kills its writer under pipefail (use sed -n 1,Np):\n" + "\n".join(
        found
    )
