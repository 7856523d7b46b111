"""The operator's memory: its heap settings (``wiring.memory``: an operator's own ``MALLOC_ARENA_MAX`` is left
alone, and memory the process freed goes back to the kernel when the operator's loop asks, glibc keeps it
otherwise), and S3 clients made by several workers at once sharing one copy of botocore's data (``flinkops.s3``)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from flinkops.wiring import memory

_RSS_MIB = (
    "def rss():\n"
    "    return next(int(x.split()[1]) for x in open('/proc/self/status') if x.startswith('VmRSS')) // 1024\n"
)


def _python(code: str) -> str:
    """Run ``code`` in a Python process of its own (the heap settings are process-wide), with ``rss()`` (the
    process's resident MiB) defined; its standard output."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)}
    done = subprocess.run([sys.executable, "-c", _RSS_MIB + code], capture_output=True, text=True, env=env, check=True)
    return done.stdout


def test_an_arena_max_from_the_environment_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert memory.limit_arenas() is False


def test_freed_memory_goes_back_to_the_kernel() -> None:
    """In a process of its own (the settings are process-wide): 100 MB of 50 kB blocks freed below a block still
    in use stay resident until ``release_free_memory``."""
    code = (
        "from flinkops.wiring import memory\n"
        "assert memory.limit_arenas()\n"
        "blocks = [b'x' * 50_000 for _ in range(2000)]\n"
        "kept = b'y' * 50_000\n"
        "del blocks\n"
        "before = rss()\n"
        "assert memory.release_free_memory()\n"
        "print(before, rss())\n"
    )
    out = _python(code)
    before, after = map(int, out.split())
    assert before - after > 60, out  # MiB


def test_s3_clients_made_at_once_by_several_threads_share_botocores_data() -> None:
    """The operator's workers make their S3 clients at the same moment: they must not each parse and keep
    botocore's endpoint and S3 model data (one client costs ~24 MiB, most of it that data)."""
    code = (
        "import threading\n"
        "from flinkops.s3 import S3Access, client\n"
        "import boto3, botocore.session\n"
        "before = rss()\n"
        "access = S3Access('http://127.0.0.1:9', 'key', 'secret', True, 'test')\n"
        "made = []\n"
        "threads = [threading.Thread(target=lambda: made.append(client(access))) for _ in range(4)]\n"
        "[t.start() for t in threads]\n"
        "[t.join() for t in threads]\n"
        "assert len(made) == 4\n"
        "print(rss() - before)\n"
    )
    out = _python(code)
    assert int(out) < 40, f"four clients made at once took {out.strip()} MiB"  # ~26; ~68 unshared
