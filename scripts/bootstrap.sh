#!/usr/bin/env bash
# Installs everything flinkops needs on a fresh machine, idempotently:
#   - Java 17 (Debian's openjdk-17-jre-headless) when no `java` is on PATH;
#   - the Debian packages the dev Kubernetes node runs (`flinkops dev up kubernetes --node`, tests/kubernetes):
#     containerd, runc, containernetworking-plugins, iptables, socat, and debootstrap for its Flink image;
#   - a Python virtualenv, ./.venv, with this checkout's flinkops (editable), apache-flink (the Flink
#     distribution) and the dev tools.
# The dependencies (~1 GB) are installed once per machine into ~/.cache/flinkops/deps-pyXY-KEY (KEY: a hash of
# the declared dependencies) and never include flinkops itself. ./.venv is this checkout's own small virtualenv:
# a .pth file puts the cached dependencies on its path and flinkops is installed into it in editable mode, so
# every checkout runs its own code and deleting one checkout changes nothing for another (seconds on a warm cache).
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
            iptables:/usr/sbin/iptables socat:/usr/bin/socat debootstrap:/usr/sbin/debootstrap \
            chromium:/usr/bin/chromium; do
  [ -x "${need#*:}" ] || node_packages="$node_packages ${need%%:*}"
done
if [ -n "$node_packages" ]; then
  # The packages only: none of them is started here (containerd runs with the node's own configuration).
  say "installing the Debian packages the tests need (the Kubernetes dev node's, Chromium):$node_packages"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $node_packages >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $node_packages >/dev/null
  fi
fi

"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || {
  echo "error: flinkops needs Python >= 3.11 (found $("$PYTHON" --version 2>&1)); set PYTHON=..." >&2; exit 1; }
# The interpreter itself, not a virtualenv's link to it (say ./.venv/bin/python3 of an activated environment, which
# this script may rebuild).
PYTHON=$("$PYTHON" -c 'import os, sys; print(os.path.realpath(sys.executable))')

# Keyed by what decides the environment's contents (Python's version and the declared dependencies), not by the
# whole pyproject.toml: editing a tool's settings there must not rebuild a 1 GB environment.
key=$("$PYTHON" - <<'PY'
import hashlib, json, tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
wanted = {"dependencies": project.get("dependencies", []), "optional": project.get("optional-dependencies", {})}
print(hashlib.sha256(json.dumps(wanted, sort_keys=True).encode()).hexdigest()[:12])
PY
)
pyver=$("$PYTHON" -c 'import sys; print(f"py{sys.version_info[0]}{sys.version_info[1]}")')
deps="$CACHE/deps-$pyver-$key"
mkdir -p "$CACHE"
# One builder at a time per cache entry: two checkouts bootstrapping at once must not both build it.
exec 9>"$deps.lock"
flock 9
if [ ! -x "$deps/bin/python" ] || [ ! -f "$deps/.complete" ]; then
  say "creating $deps (first run downloads apache-flink, ~350 MB; later runs and other checkouts reuse it)"
  rm -rf "$deps"
  "$PYTHON" -m venv "$deps"
  "$deps/bin/python" -m pip install -q --upgrade pip 'setuptools>=68'
  # The declared dependencies and the extras a checkout uses, without flinkops: no checkout's code lives here.
  "$PYTHON" - >"$deps/requirements.txt" <<'PY'
import tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
extras = project.get("optional-dependencies", {})
print("\n".join([*project.get("dependencies", []), *(r for name in ("flink", "dev", "kafka") for r in extras[name])]))
PY
  "$deps/bin/python" -m pip install -q --progress-bar off -r "$deps/requirements.txt"
  touch "$deps/.complete"
fi
exec 9>&-

# This checkout's own virtualenv. Rebuilt only when the dependencies' environment or pyproject.toml changed (or
# when it is the symlink to a shared environment that older versions of this script made).
site=$("$deps/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
stamp="$deps $(sha256sum pyproject.toml | cut -d' ' -f1) $PWD"
if [ -L .venv ]; then
  rm .venv
elif [ -e .venv ] && [ "$(cat .venv/.flinkops-stamp 2>/dev/null)" != "$stamp" ]; then
  [ -f .venv/pyvenv.cfg ] || { echo "error: ./.venv exists and is not a virtualenv; move it away and re-run" >&2; exit 1; }
  rm -rf .venv
fi
if [ ! -e .venv ]; then
  "$PYTHON" -m venv --without-pip .venv
  own=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
  # addsitedir (not a bare path) so the .pth files of the dependencies' environment are processed too.
  printf 'import site; site.addsitedir(%s)\n' "$("$PYTHON" -c 'import sys; print(repr(sys.argv[1]))' "$site")" \
    >"$own/flinkops-deps.pth"
  # The dependencies' commands (pytest, mypy, ruff, pip, ...), run by this checkout's interpreter.
  for tool in "$deps"/bin/*; do
    name=$(basename "$tool")
    case "$name" in python*|activate*|Activate.ps1|__pycache__|flinkops) continue ;; esac
    [ -e ".venv/bin/$name" ] && continue
    # pip's scripts name their interpreter on line 1 (or line 2, after `#!/bin/sh`, for a long path).
    if [ "$(head -c 2 "$tool")" = '#!' ] && sed -n 1,2p "$tool" | grep -F "$deps/bin/python" >/dev/null; then
      sed "1,2s|$deps/bin/python[0-9.]*|$PWD/.venv/bin/python|" "$tool" >".venv/bin/$name"
      chmod 755 ".venv/bin/$name"
    else
      ln -s "$tool" ".venv/bin/$name"  # a binary (ruff) or a shell script: the same for every checkout
    fi
  done
  # The build backend comes from the dependencies' environment: no isolated build environment to create.
  built=$(.venv/bin/python -m pip install -q --no-deps --no-build-isolation --disable-pip-version-check -e . 2>&1) ||
    { printf '%s\n' "$built" >&2; echo "error: installing flinkops into ./.venv failed" >&2; exit 1; }
  printf '%s\n' "$stamp" >.venv/.flinkops-stamp
fi
.venv/bin/python - "$PWD" <<'PY' || { echo "error: ./.venv is broken; delete it and re-run" >&2; exit 1; }
import sys, pathlib, flinkops, pyflink
here = pathlib.Path(sys.argv[1], "src", "flinkops")
sys.exit(0 if pathlib.Path(flinkops.__file__).parent == here else f"flinkops comes from {flinkops.__file__}")
PY
say "ready: $(.venv/bin/flinkops --help >/dev/null && echo 'flinkops installed'), Flink $(.venv/bin/python -c 'from flinkops.flink.distribution import find_distribution as f; print(f().version)'), $(java -version 2>&1 | sed -n 1p)"
