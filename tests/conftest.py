"""Shared test set-up: make ``tests/support`` importable (as ``support``) for every test directory.

Fixtures that start processes live next to the tests that need them: tests/integration/conftest.py (controller
daemons, ZooKeeper, the data plane) and tests/kubernetes/conftest.py (the control plane); tests/unit starts none.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
