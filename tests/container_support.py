"""Build and run the product's container image with podman, on a machine with no container registry in reach.

The Dockerfile starts from the official ``python:3.11-slim-bookworm`` image. No registry can be reached here, so
``python_base_image`` assembles an equivalent locally, once: a Debian bookworm root made by debootstrap from the
Debian mirror, the shared libraries the official image carries, and this machine's own CPython 3.11 in /usr/local
(where the official image keeps it). The product's Dockerfile is then built unchanged, with that base passed as
``PYTHON_IMAGE``, torch's CPU wheel from the local wheel folder, and pip's cache mounted so llama.cpp is not
compiled again. Podman runs here with chroot isolation for builds and runc with lowered ulimits for containers
(crun refuses this machine's hybrid cgroups, and raising RLIMIT_NOFILE/NPROC is not permitted).
"""

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASE_TAG = "localhost/tutor-python:3.11-slim-bookworm"
IMAGE_TAG = "localhost/course-tutor:test"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
# what python:3.11-slim-bookworm installs beside the interpreter (its shared libraries and certificates)
BASE_PACKAGES = ["ca-certificates", "netbase", "tzdata", "libssl3", "libffi8", "libsqlite3-0", "libbz2-1.0",
                 "liblzma5", "zlib1g", "libreadline8", "libncursesw6", "libuuid1", "libgdbm6"]
RUN_FLAGS = ["--runtime", "runc", "--network", "host", "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096"]
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
WHEELS = Path(os.environ.get("PIP_FIND_LINKS", "/opt/wheels"))
PIP_CACHE = Path.home() / ".cache" / "pip"


class ContainerError(RuntimeError):
    """A podman or debootstrap step failed; the message holds the end of its output."""


def run(args, timeout=1800, check=True, **kwargs):
    """Run a command; on failure raise ContainerError with the last lines of its output."""
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-40:])
        raise ContainerError(f"{' '.join(map(str, args[:4]))} … exited {result.returncode}:\n{tail}")
    return result


def image_exists(tag):
    """Whether podman has an image of that name."""
    return run(["podman", "image", "exists", tag], check=False).returncode == 0


def python_base_image():
    """The local stand-in for python:3.11-slim-bookworm (built once, then kept in podman's storage)."""
    if image_exists(BASE_TAG):
        return BASE_TAG
    prefix = Path(sys.base_prefix)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    with tempfile.TemporaryDirectory(prefix="tutor-base-", dir="/var/tmp") as scratch:
        rootfs = Path(scratch) / "rootfs"
        run(["debootstrap", "--variant=minbase", "bookworm", rootfs, DEBIAN_MIRROR])
        run(["chroot", rootfs, "apt-get", "install", "-y", "-q", "--no-install-recommends", *BASE_PACKAGES],
            env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        run(["chroot", rootfs, "apt-get", "clean"])
        shutil.rmtree(rootfs / "var/lib/apt/lists", ignore_errors=True)
        local = rootfs / "usr/local"
        shutil.copy2(prefix / "bin" / version, local / "bin" / version)
        for library in (prefix / "lib").glob("libpython3*"):
            shutil.copy2(library, local / "lib" / library.name, follow_symlinks=False)
        shutil.copytree(Path(sysconfig.get_paths()["include"]), local / "include" / version)
        shutil.copytree(prefix / "lib" / version, local / "lib" / version, symlinks=True,
                        ignore=shutil.ignore_patterns("site-packages", "__pycache__", "test"))
        (local / "lib" / version / "site-packages").mkdir()
        for name in ("python3", "python"):
            (local / "bin" / name).symlink_to(version)
        run(["chroot", rootfs, "ldconfig"])
        run(["chroot", rootfs, "/usr/local/bin/python3", "-m", "ensurepip"])
        tar = subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)
        run(["podman", "import", "--change", "CMD [\"python3\"]", "--change", "ENV LANG=C.UTF-8",
             "--change", "ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin",
             "-", BASE_TAG], stdin=tar.stdout)
        tar.wait()
    return BASE_TAG


def build_image(tag=IMAGE_TAG):
    """Build deploy/Dockerfile from the repository root on the local Python base; returns the build's output."""
    args = ["podman", "build", "--isolation", "chroot", "--network", "host", "--format", "docker",
            "-f", "deploy/Dockerfile", "-t", tag, "--build-arg", f"PYTHON_IMAGE={python_base_image()}"]
    if WHEELS.is_dir():
        args += ["-v", f"{WHEELS}:/wheels:ro", "--build-arg", "TORCH_SOURCE=--no-index --find-links /wheels"]
    if HOST_CA.exists():  # this machine's package registries are reached through its own certificate authority
        args += ["-v", f"{HOST_CA}:/host-ca.crt:ro", "--build-arg", "PIP_CERT=/host-ca.crt"]
    if PIP_CACHE.is_dir():
        args += ["-v", f"{PIP_CACHE}:/root/.cache/pip"]
    return run([*args, "."], cwd=ROOT, timeout=3600).stdout


def run_container(image, *command, env=None, name=None, detach=False, entrypoint=None, timeout=300):
    """podman run with this machine's flags; returns the CompletedProcess (detached: the container id in stdout)."""
    args = ["podman", "run", *RUN_FLAGS]
    args += ["-d"] if detach else ["--rm"]
    if name:
        args += ["--name", name]
    if entrypoint:
        args += ["--entrypoint", entrypoint]
    for key, value in (env or {}).items():
        args += ["-e", f"{key}={value}"]
    return run([*args, image, *command], timeout=timeout, check=False)


def remove_container(name):
    """Stop and remove a container (no error if it is gone); returns its log."""
    logs = run(["podman", "logs", name], check=False)
    run(["podman", "rm", "-f", "-t", "10", name], check=False)
    return logs.stdout + logs.stderr
