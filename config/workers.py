"""What every Celery worker does beside its tasks: it keeps the messages of its running tasks visible as its own
(so a short visibility timeout is safe), and it counts its tasks for /metrics.

Tasks are acknowledged after they ran (acks_late). With the Redis broker, a message a worker took stays in the
broker's ``unacked`` index, stamped with the time it was taken; any worker's restore sweep puts a message whose
stamp is older than the visibility timeout back into its queue. A worker killed with SIGKILL (host lost, OOM
killer, kill -9) leaves its messages there, and only that sweep brings them back. With the stamp taken once, the
visibility timeout had to be longer than the longest task (an hour): a killed worker's chat answer or question set
waited an hour. Here each worker re-stamps the messages it holds (running, reserved or waiting for a countdown)
every VISIBILITY_TIMEOUT / 4 seconds, so the timeout only has to outlast a few missed stamps: a live worker's
tasks are never handed out twice, and a dead worker's come back after CELERY_VISIBILITY_TIMEOUT (60 s) plus one
sweep (CELERY_RESTORE_SECONDS, 10 s), to the worker that is still running.
"""

import logging
import time

from celery import bootsteps, signals

from config import metrics
from config.kombu_redis import held_delivery_tags, restamp, unacked_index_key

log = logging.getLogger(__name__)


class VisibilityHeartbeat(bootsteps.StartStopStep):
    """A consumer step: re-stamps the worker's messages every visibility timeout / 4 on the worker's timer."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent, **kwargs):
        super().__init__(parent, **kwargs)
        self.timer_entry = None
        self.client = None

    def start(self, parent):
        """Begin stamping (when the broker is Redis)."""
        import redis

        app = parent.app
        if not (app.conf.broker_url or "").startswith(("redis://", "rediss://", "unix://")):
            return
        options = app.conf.broker_transport_options or {}
        timeout = float(options.get("visibility_timeout", 3600))
        index_key = unacked_index_key(app)
        self.client = redis.Redis.from_url(app.conf.broker_url, socket_timeout=5, socket_connect_timeout=3)

        def beat():
            try:
                restamp(self.client, held_delivery_tags(), index_key)
            except Exception as exc:  # noqa: BLE001  (Redis away: the next beat tries again)
                log.warning("could not re-stamp this worker's messages (%s); after %.0f s without a stamp they "
                            "go back to the queue", exc, timeout)

        beat()
        self.timer_entry = parent.timer.call_repeatedly(max(1.0, timeout / 4), beat)

    def stop(self, parent):
        """Stop stamping (the worker acknowledges or restores its messages as it shuts down)."""
        if self.timer_entry is not None:
            self.timer_entry.cancel()
            self.timer_entry = None

    shutdown = stop


def install(app):
    """Add the visibility heartbeat to the app's workers."""
    app.steps["consumer"].add(VisibilityHeartbeat)


# --- Task metrics ------------------------------------------------------------------------------------------

_started = {}


def _queue(task):
    info = getattr(task.request, "delivery_info", None) or {}
    return info.get("routing_key") or info.get("queue") or "default"


@signals.task_prerun.connect
def _task_started(task_id=None, task=None, **kwargs):
    _started[task_id] = time.perf_counter()


@signals.task_postrun.connect
def _task_ended(task_id=None, task=None, state=None, **kwargs):
    started = _started.pop(task_id, None)
    queue = _queue(task)
    if started is not None:
        metrics.observe("tutor_celery_task_duration_seconds", time.perf_counter() - started, queue=queue,
                        task=task.name)
    metrics.inc("tutor_celery_tasks_total", queue=queue, task=task.name, state=(state or "unknown").lower())


@signals.worker_process_shutdown.connect
@signals.worker_shutdown.connect
def _flush_metrics(**kwargs):
    metrics.flush()
