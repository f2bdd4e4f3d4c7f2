"""Jobs on the clock (config/periodic.py): Celery beat's own scheduler, driven by a simulated clock, sends every
daily job once a day with nobody using the tool; a real worker runs each; readiness and /metrics show each job's
last success."""

import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from celery.beat import Scheduler
from django.conf import settings
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from config import health
from config.models import PeriodicRun
from config.periodic import JOBS
from courses.sessions import SessionStore
from deploy import role
from tutor.models import Message


def run_beat(app, start, hours, monkeypatch):
    """Celery beat's scheduler (the class `celery beat` runs) ticking once per simulated hour from `start`;
    returns [(job, simulated time)] of what it sent to the broker."""
    clock = {"now": start}
    monkeypatch.setattr(app, "now", lambda: clock["now"])
    scheduler = Scheduler(app, lazy=False)
    sent = []
    send = scheduler.apply_async

    def recording(entry, *args, **kwargs):
        sent.append((entry.name, clock["now"]))
        return send(entry, *args, **kwargs)

    monkeypatch.setattr(scheduler, "apply_async", recording)
    for _hour in range(hours):
        clock["now"] += timedelta(hours=1)
        while scheduler.tick() == 0:  # 0: it sent a due job and has more to look at now
            pass
    return sent


@pytest.mark.django_db(transaction=True)
def test_with_no_chat_for_three_days_each_daily_job_runs_once_a_day(celery_worker, monkeypatch):
    from config.celery import app

    expired = SessionStore()
    expired.create()
    SessionStore.get_model_class().objects.filter(pk=expired.session_key).update(expire_date=timezone.now() - timedelta(minutes=1))
    start = datetime(2027, 3, 1, 0, 0, tzinfo=ZoneInfo(settings.TIME_ZONE))

    sent = run_beat(app, start, 72, monkeypatch)

    assert not Message.objects.exists()  # nobody chatted
    for job in JOBS:
        times = [at for name, at in sent if name == job]
        assert [at.date() for at in times] == [start.date() + timedelta(days=d) for d in range(3)], (job, sent)
        assert all(at.hour == settings.RETENTION_HOUR + 1 for at in times)  # the first tick after 03:15
    assert len(sent) == 3 * len(JOBS)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        done = dict(PeriodicRun.objects.values_list("job", "successes"))
        if all(done.get(job) == 3 for job in JOBS):
            break
        time.sleep(0.2)
    assert done == {job: 3 for job in JOBS}, celery_worker.log_path.read_text()[-3000:]
    assert not SessionStore.get_model_class().objects.filter(pk=expired.session_key).exists()  # the retention run really ran

    readiness = health.run_checks(["periodic"])["periodic"]
    assert readiness["ok"]
    for job in JOBS:
        assert f"{job} {timezone.localdate().isoformat()}T" in readiness["detail"]
    body = Client().get("/metrics").content.decode()
    stamps = {s.labels["job"]: s.value for family in text_string_to_metric_families(body)
              for s in family.samples if s.name == "tutor_periodic_job_last_success_timestamp_seconds"}
    assert set(stamps) == set(JOBS)
    last = {run.job: run.last_success_at.timestamp() for run in PeriodicRun.objects.all()}
    assert stamps == pytest.approx(last)


@pytest.mark.django_db(transaction=True)
def test_a_job_that_never_ran_shows_as_never_and_a_failure_keeps_the_last_success(monkeypatch):
    from config.periodic import recorded

    assert health.check_periodic() == "; ".join(f"{job} never" for job in JOBS)

    @recorded("prune_lti_nonces")
    def fails():
        raise RuntimeError("database gone")

    with pytest.raises(RuntimeError):
        fails()
    run = PeriodicRun.objects.get(job="prune_lti_nonces")
    assert run.last_success_at is None and run.successes == 0 and "database gone" in run.last_error
    body = Client().get("/metrics").content.decode()
    assert 'tutor_periodic_job_last_success_timestamp_seconds{job="prune_lti_nonces"} 0.0' in body


def test_beat_is_a_role_of_the_image_and_writes_no_pid_file():
    command = role.command_for("beat", [], {"BEAT_SCHEDULE_FILE": "/data/celerybeat-schedule"})
    assert command[command.index("-A") + 1] == "config" and "beat" in command
    assert command[command.index("--schedule") + 1] == "/data/celerybeat-schedule" and "--pidfile=" in command
    assert set(settings.CELERY_BEAT_SCHEDULE) == set(JOBS)


def test_no_chat_code_schedules_retention_any_more():
    """Retention runs on the clock only: the answer pipeline no longer queues it (the old trigger)."""
    from pathlib import Path

    for path in Path(settings.BASE_DIR, "tutor").rglob("*.py"):
        assert "schedule_daily_purge" not in path.read_text(), path
