"""The control loop, split by role: ``loop`` (passes, backoff, requeue), ``observer`` (what the world looks like),
``executor`` (carry a plan out, write-ahead) and ``requests`` (rendered configuration and cluster requests).

It talks to the world through ``flinkops.ports`` only; ``flinkops.wiring`` builds it for a target.
"""

from flinkops.controller.loop import Controller, ReconcileResult, on_cluster, run_loop

__all__ = ["Controller", "ReconcileResult", "on_cluster", "run_loop"]
