"""A dev node left running for a control plane that is gone (its test session was killed) is stopped by the next
``up`` for another control plane; a node whose control plane still runs is refused, never touched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flinkops.dev.kubernetes import KubeControlPlane
from flinkops.dev.node import node as node_module
from flinkops.dev.node.node import KubeNode
from flinkops.errors import RuntimeFailure


def _node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, owner_runs: bool) -> tuple[KubeNode, list[str]]:
    root = tmp_path / "node"
    root.mkdir()
    (root / "node.json").write_text(json.dumps({"control_plane": str(tmp_path / "old-control-plane")}))
    node = KubeNode(KubeControlPlane(tmp_path / "new-control-plane"), root=root)
    stopped: list[str] = []
    monkeypatch.setattr(KubeNode, "running", lambda self: not stopped)
    monkeypatch.setattr(KubeNode, "_stop_locked", lambda self, timeout: stopped.append("stopped") or [])
    monkeypatch.setattr(node_module, "_control_plane_runs", lambda data_dir: owner_runs)
    return node, stopped


def test_a_node_whose_control_plane_is_gone_is_stopped_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    node, stopped = _node(tmp_path, monkeypatch, owner_runs=False)
    node._check_owner()
    assert stopped == ["stopped"]


def test_a_node_of_a_running_control_plane_is_refused_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    node, stopped = _node(tmp_path, monkeypatch, owner_runs=True)
    with pytest.raises(RuntimeFailure, match="one node per machine"):
        node._check_owner()
    assert stopped == []


def test_a_control_plane_directory_that_is_gone_does_not_run(tmp_path: Path) -> None:
    assert not node_module._control_plane_runs(str(tmp_path / "deleted"))
