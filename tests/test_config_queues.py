"""Every Celery task runs somewhere: each registered task's queue (CELERY_TASK_ROUTES, else the default queue) has
a worker in every way the product runs: the one-command stack (deploy/stack.py), compose and both Kubernetes
overlays. A task routed to a queue nobody consumes would wait forever in production."""

from pathlib import Path

import pytest
import yaml

from deploy import role, stack
from tests.test_deploy_manifests import OVERLAYS, by_kind, pod_spec, render

ROOT = Path(__file__).resolve().parent.parent


def task_queues():
    """{task name: queue name} of every task the project registers (Celery's own built-ins left out: the product
    uses no chords, and Redis expires results itself, so beat schedules no backend cleanup)."""
    from config.celery import app

    app.loader.import_default_modules()  # the autodiscovered tasks modules of every app
    names = [name for name in app.tasks if not name.startswith("celery.")]
    return {name: app.amqp.router.route({}, name, args=(), kwargs={})["queue"].name for name in names}


def worker_queues(args):
    """The queues a container's role args (["worker", "chat"]) consume, else none."""
    if args and args[0] == "worker":
        command = role.command_for("worker", list(args[1:]), {})
        return set(command[command.index("-Q") + 1].split(","))
    return set()


def compose_queues():
    services = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())["services"]
    return set().union(*(worker_queues(service.get("command") or []) for service in services.values()))


def kubernetes_queues(overlay):
    deployments = by_kind(render(overlay), "Deployment").values()
    return set().union(*(worker_queues(container.get("args") or [])
                         for deployment in deployments for container in pod_spec(deployment)["containers"]))


def test_the_project_registers_the_tasks_this_test_knows_of():
    """A control: the listing finds the tasks of every app (and not only those imported so far)."""
    found = task_queues()
    assert {"config.ping_database", "config.tasks.purge_expired_data", "courses.tasks.ingest_document",
            "tutor.tasks.chat_answer", "tutor.tasks.generate_questions", "lti.tasks.sync_roster"} <= set(found)
    assert found["tutor.tasks.chat_answer"] == "chat" and found["courses.tasks.ingest_document"] == "ingest"


def orphaned(queues_of_tasks, consumed):
    """{task: queue} of the tasks whose queue no worker consumes."""
    return {name: queue for name, queue in queues_of_tasks.items() if queue not in consumed}


@pytest.mark.parametrize("where", ["stack", "compose", *OVERLAYS])
def test_every_task_has_a_worker_for_its_queue(where):
    consumed = {"stack": lambda: set(stack.WORKER_QUEUES), "compose": compose_queues}.get(
        where, lambda: kubernetes_queues(where))()
    assert consumed >= {"chat", "ingest", "generate"}, where
    orphans = orphaned(task_queues(), consumed)
    assert not orphans, f"{where}: no worker consumes the queue of {orphans} (workers consume {sorted(consumed)})"


def test_a_task_on_a_queue_nobody_consumes_is_caught():
    """A control: the old default queue ("default", where config.ping_database went) has no worker anywhere."""
    consumed = compose_queues()
    assert orphaned({**task_queues(), "config.ping_database": "default"}, consumed) == {
        "config.ping_database": "default"}
