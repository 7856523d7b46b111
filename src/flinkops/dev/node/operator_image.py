"""The flinkops operator's image, built on this machine with no registry and no container daemon, and cached: the
recipe of ``deploy/docker/Dockerfile`` (tests/unit/test_operator_image_recipe.py keeps the two in step), made
with the dev node's own machinery (:mod:`flinkops.dev.node.image`, :mod:`flinkops.dev.node.oci`).

Three layers, so that an edit of the sources rebuilds a small one:

1. *base*: a Debian bookworm ``minbase`` root filesystem by ``debootstrap`` with :data:`OPERATOR_PACKAGES`
   (Debian's Python 3.11 and its ``venv`` module, the CA bundle), the user ``flinkops`` (uid/gid 10001, the Helm
   chart's ``securityContext``), and without manuals, docs (copyright files stay) and translations, as Debian's
   ``slim`` images leave them out. Cached by suite, packages, architecture and recipe: made once per machine.
2. *deps*: ``/opt/flinkops``, a virtualenv of the image's own ``python3`` with flinkops' dependencies
   (``pyproject.toml``'s ``[project].dependencies``, no ``flink`` extra). The wheels are fetched by ``pip wheel``
   on this machine (through pip's own configuration), pinned to the versions installed where this runs, and
   installed by the image's pip inside the unpacked base (``chroot``) with no index. Byte-compiled, because the
   chart's root filesystem is read-only. Cached by the dependencies, the pins and the base layer.
3. *app*: what ``pip install --no-deps`` of the flinkops wheel adds to that virtualenv (the package, its
   dist-info, the ``flinkops`` script). The wheel is built by ``pip wheel`` from this source checkout's
   ``pyproject.toml``, ``README.md`` and ``src/``, exactly what the Dockerfile's build context admits. Cached
   by the sources' digest and the deps layer.

The image is named ``docker.io/library/flinkops:<version>``, what the chart's default image (``flinkops``, tagged
with the chart's appVersion) expands to; ``ENTRYPOINT ["flinkops"]``, ``CMD ["operator", "run"]``, user
``10001:10001``.

Called by: ``scripts/prefetch.py``, tests/integration/test_operator_image_run.py (runs it with runc). Invariants:
a cached file is complete (written aside and renamed); a cache key covers every input that changes the bytes;
nothing is fetched but Debian packages (debootstrap) and Python wheels (pip); the root filesystem a layer is
made from is a scratch copy, deleted afterwards.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import flinkops
from flinkops.artifacts import Progress
from flinkops.artifacts.cache import run_tool, say, scratch
from flinkops.dev.node.image import (
    SUITE,
    BuiltImage,
    cache_key,
    debian_layer,
    images_dir,
    layer_once,
    pack_archive,
    prune_builds,
)
from flinkops.dev.node.oci import Layer, LayerWriter, go_arch, image_config
from flinkops.errors import RuntimeFailure

__all__ = [
    "CMD",
    "ENTRYPOINT",
    "HTTP_PORT",
    "OPERATOR_ENV",
    "OPERATOR_GID",
    "OPERATOR_PACKAGES",
    "OPERATOR_UID",
    "VENV",
    "WORKDIR",
    "operator_image",
    "operator_image_names",
    "source_root",
]

OPERATOR_PACKAGES = ("python3", "python3-venv", "ca-certificates")
OPERATOR_UID = OPERATOR_GID = 10001
VENV = "/opt/flinkops"
WORKDIR = "/tmp"
HTTP_PORT = 8085
ENTRYPOINT = ("flinkops",)
CMD = ("operator", "run")
OPERATOR_ENV = {
    "PATH": f"{VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONUNBUFFERED": "1",
    "HOME": "/tmp",
    "FLINKOPS_HOME": "/tmp/flinkops",
    "FLINKOPS_LOG_FORMAT": "json",
    "LANG": "C.UTF-8",
}
_RECIPE = "1"  # bump when the way a layer is made changes, so cached layers are rebuilt
_USERS = (
    ("groupadd", "--system", "--gid", str(OPERATOR_GID), "flinkops"),
    ("useradd", "--system", "--uid", str(OPERATOR_UID), "--gid", str(OPERATOR_GID), "--home-dir", "/tmp",
     "--no-create-home", "--shell", "/usr/sbin/nologin", "flinkops"),
)  # fmt: skip
# Left out of the base layer, as Debian's slim images leave them out (their dpkg path-exclude rules).
_SLIM_DIRS = ("usr/share/man/", "usr/share/info/", "usr/share/locale/", "usr/share/groff/", "usr/share/lintian/")
# The chroot's environment: nothing from this machine's (its pip settings name paths that are not in there).
_CHROOT_ENV = {
    "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/tmp",
    "LANG": "C.UTF-8",
    "PIP_NO_INDEX": "1",
    "PIP_NO_CACHE_DIR": "1",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
}


def operator_image_names(version: str = flinkops.__version__) -> tuple[str, ...]:
    return (f"docker.io/library/flinkops:{version}",)


def source_root() -> Path:
    """The source checkout this flinkops runs from (``pyproject.toml`` next to ``src/flinkops``)."""
    root = Path(flinkops.__file__).resolve().parents[2]
    if not (root / "pyproject.toml").is_file() or not (root / "src" / "flinkops").is_dir():
        raise RuntimeFailure(
            f"the operator image is built from a flinkops source checkout; {root} is not one (no pyproject.toml "
            "next to src/flinkops)"
        )
    return root


def _slim(relative: str) -> bool:
    if relative.startswith(_SLIM_DIRS):
        return True
    return relative.startswith("usr/share/doc/") and relative.count("/") >= 4 and not relative.endswith("/copyright")


def _context_files(root: Path) -> list[Path]:
    """What the Dockerfile's build context admits (its .dockerignore), relative to ``root``, sorted."""
    found = [Path("pyproject.toml"), Path("README.md")]
    for path in sorted((root / "src").rglob("*")):
        relative = path.relative_to(root)
        if path.is_file() and not any(p == "__pycache__" or p.endswith(".egg-info") for p in relative.parts):
            found.append(relative)
    return found


def _source_digest(root: Path, files: list[Path]) -> str:
    sha = hashlib.sha256()
    for relative in files:
        sha.update(f"{relative}\0{(root / relative).stat().st_mode & 0o111}\0".encode())
        sha.update((root / relative).read_bytes())
    return sha.hexdigest()


def _pins() -> list[str]:
    """``name==version`` of every distribution installed where this runs, flinkops itself excepted: the
    constraints the image's dependencies are resolved under, so the image runs what the tests here ran."""
    pins = set()
    for dist in metadata.distributions():
        name = str(dist.metadata["Name"] or "").strip()
        if name and name.lower() != "flinkops":
            pins.add(f"{name}=={dist.version}")
    return sorted(pins, key=str.lower)


def _pip(argv: list[str], cwd: Path, what: str, progress: Progress | None) -> None:
    ok, tail = run_tool(
        [sys.executable, "-m", "pip", *argv],
        cwd=cwd,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
        log_name="pip-operator-image",
        what=what,
        progress=progress,
        missing_hint=f"{sys.executable} must have pip",
    )
    if not ok:
        raise RuntimeFailure(f"pip failed {what}:\n{tail}")


def _in_chroot(rootfs: Path, argv: list[str], what: str, progress: Progress | None) -> None:
    ok, tail = run_tool(
        ["chroot", str(rootfs), *argv],
        cwd=rootfs,
        env=_CHROOT_ENV,
        log_name="chroot-operator-image",
        what=what,
        progress=progress,
    )
    if not ok:
        raise RuntimeFailure(f"`{' '.join(argv)}` in the operator image failed:\n{tail}")


def _requirements(root: Path) -> list[str]:
    """flinkops' own dependencies (``[project].dependencies`` of ``pyproject.toml``; no extras)."""
    with (root / "pyproject.toml").open("rb") as handle:
        return [str(r) for r in tomllib.load(handle)["project"]["dependencies"]]


def _unpack(layers: list[Layer], rootfs: Path) -> None:
    """Unpack ``layers`` in order into the scratch directory ``rootfs``, with a ``/dev/null`` (pip and the venv
    module want one; the base layer keeps ``/dev`` empty)."""
    rootfs.mkdir()
    for layer in layers:
        done = subprocess.run(
            ["tar", "--numeric-owner", "-xpf", str(layer.path), "-C", str(rootfs)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeFailure(f"unpacking {layer.path} failed: {done.stderr.strip()}")
    os.mknod(rootfs / "dev" / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))


def _listing(directory: Path) -> set[str]:
    return {entry.name for entry in os.scandir(directory)} if directory.is_dir() else set()


def _deps_layer(base: Layer, root: Path, pins: list[str], progress: Progress | None) -> Layer:
    """The virtualenv with flinkops' dependencies (and pip): all of ``/opt/flinkops`` but flinkops itself."""
    requirements = _requirements(root)
    path = images_dir() / f"operator-deps-{cache_key(base.digest, requirements, pins, _RECIPE, VENV)}.tar"

    def build() -> Layer:
        with scratch(images_dir()) as tmp:
            rootfs = tmp / "rootfs"
            _unpack([base], rootfs)
            wheels = rootfs / "tmp" / "wheels"
            wheels.mkdir()
            (wheels / "requirements.txt").write_text("".join(f"{r}\n" for r in requirements))
            (tmp / "constraints.txt").write_text("".join(f"{pin}\n" for pin in pins))
            say(progress, "fetching the operator's dependencies as wheels (pip wheel)")
            _pip(
                ["wheel", "--only-binary", ":all:", "--wheel-dir", str(wheels), "--constraint", "constraints.txt",
                 "--requirement", str(wheels / "requirements.txt")],
                tmp,
                "fetching the operator's dependencies",
                progress,
            )  # fmt: skip
            say(progress, f"installing the dependencies into {VENV} (the image's own pip, no index)")
            _in_chroot(rootfs, ["/usr/bin/python3", "-m", "venv", VENV], "creating the virtualenv", progress)
            install = [f"{VENV}/bin/pip", "install", "--no-index", "--find-links", "/tmp/wheels"]
            _in_chroot(rootfs, [*install, "--requirement", "/tmp/wheels/requirements.txt"], "installing", progress)
            _in_chroot(rootfs, [f"{VENV}/bin/python", "-m", "compileall", "-q", f"{VENV}/lib"], "compiling", progress)
            with LayerWriter(path) as writer:
                writer.add_dir("opt")
                writer.add_tree(rootfs / VENV.strip("/"), VENV.strip("/"), uid=0, gid=0)
                return writer.finish()

    return layer_once(path, build)


def _flinkops_layer(base: Layer, deps: Layer, root: Path, progress: Progress | None) -> Layer:
    """What installing the flinkops wheel (``--no-deps``) adds to the virtualenv: the package (byte-compiled),
    its dist-info and the ``flinkops`` script, with their parent directories."""
    files = _context_files(root)
    path = images_dir() / f"operator-app-{cache_key(deps.digest, _source_digest(root, files), _RECIPE)}.tar"

    def build() -> Layer:
        with scratch(images_dir()) as tmp:
            rootfs = tmp / "rootfs"
            _unpack([base, deps], rootfs)
            context = tmp / "context"
            for relative in files:
                (context / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(root / relative, context / relative)
            say(progress, "building the flinkops wheel (pip wheel)")
            wheels = rootfs / "tmp" / "wheels"
            _pip(
                ["wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", str(wheels), "."],
                context,
                "building the wheel",
                progress,
            )
            (wheel,) = wheels.glob("flinkops-*.whl")
            venv = rootfs / VENV.strip("/")
            (site,) = (venv / "lib").glob("python3*/site-packages")
            before = {site: _listing(site), venv / "bin": _listing(venv / "bin")}
            say(progress, f"installing flinkops into {VENV} (the image's own pip, no index)")
            install = [f"{VENV}/bin/pip", "install", "--no-index", "--no-deps", f"/tmp/wheels/{wheel.name}"]
            _in_chroot(rootfs, install, "installing the flinkops wheel", progress)
            package = f"/{site.relative_to(rootfs)}/flinkops"
            _in_chroot(rootfs, [f"{VENV}/bin/python", "-m", "compileall", "-q", package], "compiling", progress)
            with LayerWriter(path) as writer:
                written: set[str] = set()
                for directory, listed in before.items():
                    parts = directory.relative_to(rootfs).parts
                    for depth in range(1, len(parts) + 1):  # parents first, as they are in the layer below
                        name = "/".join(parts[:depth])
                        if name not in written:
                            written.add(name)
                            writer.add_dir(name, mode=rootfs.joinpath(*parts[:depth]).stat().st_mode)
                    for entry in sorted(_listing(directory) - listed):
                        added, name = directory / entry, "/".join((*parts, entry))
                        if added.is_dir() and not added.is_symlink():
                            writer.add_tree(added, name, uid=0, gid=0)
                        else:
                            writer.add_file(name, added)
                return writer.finish()

    return layer_once(path, build)


def operator_image(progress: Progress | None = None) -> BuiltImage:
    """The operator image of this source checkout; built once per set of inputs and cached (the first build
    runs debootstrap: a minute or more)."""
    base_path = images_dir() / f"operator-base-{cache_key(SUITE, OPERATOR_PACKAGES, go_arch(), _RECIPE, _USERS)}.tar"
    base = debian_layer(base_path, OPERATOR_PACKAGES, _USERS, "the operator image", progress, skip=_slim)
    root = source_root()
    deps = _deps_layer(base, root, _pins(), progress)
    app = _flinkops_layer(base, deps, root, progress)
    layers = [base, deps, app]
    names = operator_image_names()
    config = image_config(
        layers,
        entrypoint=ENTRYPOINT,
        cmd=CMD,
        env=OPERATOR_ENV,
        working_dir=WORKDIR,
        user=f"{OPERATOR_UID}:{OPERATOR_GID}",
        exposed_ports=[f"{HTTP_PORT}/tcp"],
        labels={"org.opencontainers.image.title": f"flinkops operator {flinkops.__version__}"},
    )
    key = cache_key([layer.digest for layer in layers], names, config)
    archive = images_dir() / f"operator-{flinkops.__version__}-{key}.oci.tar"
    built = pack_archive(archive, layers, config, names, progress, "the operator image")
    prune_builds("operator-*.oci.tar", keep={archive})
    prune_builds("operator-app-*.tar", keep={app.path})
    prune_builds("operator-deps-*.tar", keep={deps.path})
    return built
