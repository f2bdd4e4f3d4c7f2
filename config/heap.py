"""Garbage-collector settling for long-running processes (web server, workers).

CPython's cyclic collector walks every tracked object of a generation it collects. After start-up a process
holds hundreds of thousands of them (Django, Celery, the embedding model's modules) that live until it exits,
and each older-generation collection walked them all again: on a 2-core machine that was about 4 ms of the web
process per chat answer, and 0.6 ms frozen (bench/bench_chat.py with a gc callback). Freezing them once
start-up is done moves them to a permanent generation the collector skips.
"""

import gc
import logging

log = logging.getLogger(__name__)


def freeze_startup_objects(what):
    """Collect the garbage of start-up, then exclude everything still alive from later collections."""
    gc.collect()
    gc.freeze()
    log.debug("%s: %d start-up objects frozen out of garbage collection", what, gc.get_freeze_count())
