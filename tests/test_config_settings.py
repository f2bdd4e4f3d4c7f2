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


# what an admin's tutor.env and secrets.env give a production process
PRODUCTION = {"DJANGO_ENV": "production", "SECRET_KEY": "k" * 10 + "Zq8-2vX_p1Lm9sTr4wYb7nHc0dFg5jKe3uIo6aSx",
              "ALLOWED_HOSTS": "tutor.example.edu", "PUBLIC_URL": "https://tutor.example.edu",
              "CSRF_TRUSTED_ORIGINS": "https://tutor.example.edu", "BEHIND_TLS_PROXY": "true", "DEBUG": "false",
              "LTI_TEST_PLATFORM": "false"}


@pytest.mark.parametrize("variable, value, expected", [
    ("SECRET_KEY", "", "SECRET_KEY must be set when DJANGO_ENV=production"),
    ("DEBUG", "true", "DEBUG must be off when DJANGO_ENV=production"),
    ("LTI_TEST_PLATFORM", "true", "LTI_TEST_PLATFORM must stay off when DJANGO_ENV=production"),
    ("ALLOWED_HOSTS", "*", "ALLOWED_HOSTS must name the tool's host names"),
    ("ALLOWED_HOSTS", "tutor.example.edu,*", "ALLOWED_HOSTS must name the tool's host names"),
    ("PUBLIC_URL", "http://tutor.example.edu", "PUBLIC_URL must start with https://"),
])
def test_production_refuses_an_unsafe_setting_in_one_line(variable, value, expected, tmp_path):
    result = manage("check", **{**PRODUCTION, variable: value, "TUTOR_DATA_DIR": str(tmp_path)})
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Configuration error: ") and expected in lines[0], lines
    assert not (tmp_path / "secret_key").exists()  # no pod makes up a key of its own
    # the image's long-running roles stop the same way, before uvicorn or Celery start
    for role in (["web"], ["worker", "chat"], ["beat"]):
        started = subprocess.run([sys.executable, "-m", "deploy.role", *role], cwd=ROOT, capture_output=True, text=True,
                                 env={**os.environ, **PRODUCTION, variable: value, "TUTOR_DATA_DIR": str(tmp_path)},
                                 timeout=120)
        assert started.returncode == 2 and started.stderr.strip().splitlines() == lines, started.stderr


def test_the_production_settings_pass_djangos_deployment_checks(tmp_path):
    """`manage.py check --deploy` with production settings: no warning (what is silenced, settings.py says why)."""
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION, TUTOR_DATA_DIR=str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_the_deployment_checks_still_see_missing_security_middleware(tmp_path):
    """A control: the name tests are silenced, but config.checks finds the middleware by class; without the
    security middleware (and so without HSTS) the deployment check fails."""
    code = ("import sys, django; from django.conf import settings; django.setup(); "
            "settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if 'SecurityMiddleware' not in m]; "
            "from django.core.management import call_command; "
            "call_command('check', '--deploy', '--fail-level', 'WARNING')")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={**os.environ, **PRODUCTION, "TUTOR_DATA_DIR": str(tmp_path),
                                 "DJANGO_SETTINGS_MODULE": "config.settings"})
    assert result.returncode != 0
    assert "config.W001" in result.stderr
