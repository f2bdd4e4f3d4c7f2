"""Celery tasks of the project itself (queue "ingest" by route: the ingest workers have the uploaded files)."""

from celery import shared_task


@shared_task(name="config.tasks.purge_expired_data", acks_late=True, ignore_result=True)
def purge_expired_data():
    """The daily retention run (config.privacy.purge_expired_data); queued once a day by the chat workers."""
    from config.privacy import purge_expired_data as run

    return run()
