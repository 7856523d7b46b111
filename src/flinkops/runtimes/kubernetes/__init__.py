"""runtimes/kubernetes: Flink clusters as Kubernetes objects (``render`` makes them, the runtime applies them)."""
