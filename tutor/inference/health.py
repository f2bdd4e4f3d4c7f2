"""The model servers as the project's readiness and /metrics see them: whether each answers (the readiness check
"inference", config.health) and how many requests hold or wait for its slots (live gauges, config.metrics);
registered in TutorAppConfig.ready()."""

import httpx
from django.conf import settings

from config.metrics import endpoint_label
from tutor.inference import capacity
from tutor.inference.client import _server_root


def check_inference():
    """Each inference endpoint answers: its /health route (vLLM, llama.cpp servers, our embedded one), else its
    model list. A server that accepts the connection but is slow to answer is busy, not down: answers queue
    there, so readiness does not fail (and never waits for a model slot)."""
    if not settings.INFERENCE_URLS:
        return "no inference server configured (INFERENCE_URL=none): the chat says that no model is set up"
    headers = {"Authorization": f"Bearer {settings.INFERENCE_API_KEY}"} if settings.INFERENCE_API_KEY else {}
    errors, busy = [], []
    for base in settings.INFERENCE_URLS:
        fallback = base.rstrip("/") + ("/models" if settings.INFERENCE_API == "openai" else "/api/tags")
        try:
            for url in (_server_root(base) + "/health", fallback):
                response = httpx.get(url, timeout=3, headers=headers)
                if response.status_code in (404, 405) and url != fallback:
                    continue
                response.raise_for_status()
                return f"{base} answers"
        except httpx.TimeoutException as exc:
            if isinstance(exc, httpx.ConnectTimeout):
                errors.append(f"{base}: {exc.__class__.__name__}: {exc}")
            else:
                busy.append(base)
        except httpx.HTTPError as exc:
            errors.append(f"{base}: {exc.__class__.__name__}: {exc}")
    if busy:
        return f"{busy[0]} is busy (took the connection, slow to answer)"
    raise RuntimeError("; ".join(errors))


def slot_gauges():
    """/metrics' live gauges of the model servers' slots: {metric: {(endpoint,): value}}; a server that cannot be
    asked is left out (a scrape never fails for one server)."""
    in_use, waiting = {}, {}
    for url in model_servers():
        try:
            held, queued = capacity.queue_length(url)
        except Exception:  # noqa: BLE001  (a scrape never fails for one server)
            continue
        in_use[(endpoint_label(url),)], waiting[(endpoint_label(url),)] = float(held), float(queued)
    return {"tutor_inference_slots_in_use": in_use, "tutor_inference_slots_waiting": waiting}


def model_servers():
    """The configured model servers and those courses chose for themselves."""
    from tutor.models import TutorConfig

    urls = list(settings.INFERENCE_URLS)
    for entry in TutorConfig.objects.exclude(endpoint="").values_list("endpoint", flat=True).distinct():
        urls.extend(u.strip() for u in entry.split(",") if u.strip())
    return list(dict.fromkeys(urls))


def register():
    """Register the check and the gauges with config.health and config.metrics (from TutorAppConfig.ready())."""
    from config import health, metrics

    health.register_check("inference", check_inference)
    metrics.register_collector(slot_gauges)
