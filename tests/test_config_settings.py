"""Bad configuration gives one clear line naming the problem, never a traceback."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def manage(*args, **env):
    return subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT, capture_output=True,
                          text=True, env=dict(os.environ, **env), timeout=120)


@pytest.mark.parametrize("variable, value, expected", [
    ("DATABASE_URL", "mysql://db/tutor", "DATABASE_URL must start with postgresql://"),
    ("INFERENCE_URL", "not-a-url", "INFERENCE_URL entry 'not-a-url' is not an http(s) URL"),
    ("REDIS_URL", "amqp://x", "REDIS_URL must start with redis://"),
    ("DEBUG", "maybe", "DEBUG='maybe' is not a boolean"),
    ("MAX_UPLOAD_MB", "lots", "MAX_UPLOAD_MB='lots' is not an integer"),
])
def test_malformed_setting_is_one_clear_line(variable, value, expected):
    result = manage("check", **{variable: value})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Configuration error: ")
    assert expected in lines[0]


def test_unreachable_services_are_named_by_preflight():
    """An unreachable database and a wrong inference URL each get one FAIL line with the reason."""
    result = manage("preflight", DATABASE_URL="postgresql://postgres@127.0.0.1:1/nowhere",
                    INFERENCE_URL="http://127.0.0.1:2/v1")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    database = [line for line in lines if line.startswith("FAIL  database:")]
    inference = [line for line in lines if line.startswith("FAIL  inference:")]
    assert len(database) == 1 and "127.0.0.1" in database[0] and "port 1" in database[0]
    assert len(inference) == 1 and "127.0.0.1:2" in inference[0]
    assert "cannot start" in lines[-1]


def test_without_a_model_server_preflight_passes_and_says_so():
    """INFERENCE_URL=none (what run.sh --no-llm sets): the product starts; preflight names the missing model."""
    result = manage("preflight", "--skip", "database", "--skip", "redis", INFERENCE_URL="none")
    assert result.returncode == 0, result.stderr
    assert "ok    inference: no inference server configured" in result.stdout


def test_production_refuses_the_test_platform():
    result = manage("check", DJANGO_ENV="production", LTI_TEST_PLATFORM="true")
    assert result.returncode == 2
    assert "LTI_TEST_PLATFORM must stay off" in result.stderr
