#!/usr/bin/env bash
# Installs everything flinkops needs on a fresh machine, idempotently:
#   - Java 17 (Debian's openjdk-17-jre-headless) when no `java` is on PATH;
#   - the Debian packages the dev Kubernetes node runs (`flinkops dev up kubernetes --node`, tests/kubernetes):
#     containerd, runc, containernetworking-plugins, iptables, socat, and debootstrap for its Flink image;
#   - a Python virtualenv with flinkops, apache-flink (the Flink distribution) and the dev tools.
# The virtualenv lives in ~/.cache/flinkops (keyed by a hash of pyproject.toml) so a warm machine reuses it;
# ./.venv is a symlink to it. Re-running only re-points the editable install at this checkout.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${FLINKOPS_CACHE:-$HOME/.cache/flinkops}"
PYTHON="${PYTHON:-python3}"

say() { printf '\033[1m[bootstrap]\033[0m %s\n' "$*"; }

if ! command -v java >/dev/null 2>&1; then
  say "no java on PATH: installing openjdk-17-jre-headless"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null
  fi
fi
java -version >/dev/null 2>&1 || { echo "error: java is not usable after installing it" >&2; exit 1; }

node_packages=""
for need in containerd:/usr/bin/containerd runc:/usr/sbin/runc containernetworking-plugins:/usr/lib/cni/bridge \
            iptables:/usr/sbin/iptables socat:/usr/bin/socat debootstrap:/usr/sbin/debootstrap; do
  [ -x "${need#*:}" ] || node_packages="$node_packages ${need%%:*}"
done
if [ -n "$node_packages" ]; then
  # The packages only: none of them is started here (containerd runs with the node's own configuration).
  say "installing the Kubernetes dev node's Debian packages:$node_packages"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $node_packages >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $node_packages >/dev/null
  fi
fi

"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || {
  echo "error: flinkops needs Python >= 3.11 (found $("$PYTHON" --version 2>&1)); set PYTHON=..." >&2; exit 1; }

# Keyed by what decides the environment's contents (Python's version and the declared dependencies), not by the
# whole pyproject.toml: editing a tool's settings there must not rebuild a 1 GB environment.
key=$("$PYTHON" - <<'PY'
import hashlib, json, tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
wanted = {"dependencies": project.get("dependencies", []), "optional": project.get("optional-dependencies", {})}
print(hashlib.sha256(json.dumps(wanted, sort_keys=True).encode()).hexdigest()[:12])
PY
)
venv="$CACHE/venv-$("$PYTHON" -c 'import sys; print(f"py{sys.version_info[0]}{sys.version_info[1]}")')-$key"
if [ ! -x "$venv/bin/python" ] || [ ! -f "$venv/.complete" ]; then
  say "creating $venv (first run downloads apache-flink, ~350 MB; later runs reuse it)"
  rm -rf "$venv"
  mkdir -p "$CACHE"
  "$PYTHON" -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip 'setuptools>=68'
  "$venv/bin/pip" install -q --progress-bar off -e '.[flink,dev,kafka]'
  touch "$venv/.complete"
else
  # The build backend lives in the environment (pyproject's build-system), so re-pointing the editable install
  # needs no isolated build environment: ~3 s instead of ~25 s on every run.
  "$venv/bin/python" -c 'import sys, setuptools; sys.exit(int(setuptools.__version__.split(".")[0]) < 68)' 2>/dev/null ||
    "$venv/bin/pip" install -q 'setuptools>=68'
  "$venv/bin/pip" install -q --no-deps --no-build-isolation -e . >/dev/null
fi
ln -sfn "$venv" .venv
"$venv/bin/python" -c 'import flinkops, pyflink' || { echo "error: the environment in $venv is broken; delete it and re-run" >&2; exit 1; }
say "ready: $(.venv/bin/flinkops --help >/dev/null && echo 'flinkops installed'), Flink $("$venv/bin/python" -c 'from flinkops.flink.distribution import find_distribution as f; print(f().version)'), $(java -version 2>&1 | sed -n 1p)"
