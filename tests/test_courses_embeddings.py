"""Embedding backends: packaged models load once and give unit vectors; "server:" talks to /embeddings."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from courses.embeddings import EmbeddingError, get_embedder


def test_the_static_model_embeds_german_and_counts_tokens():
    embedder = get_embedder("static")
    assert embedder is get_embedder("static")  # loaded once per process
    vectors = embedder.embed_passages(["Das System herunterfahren", "Wie fahre ich das System herunter?", "Katzen"])
    assert vectors.shape == (3, embedder.dimension)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
    assert embedder.count_tokens("Systemadministrations-Werkzeuge") > 1


class _EmbeddingsServer(BaseHTTPRequestHandler):
    """An OpenAI-compatible /v1/embeddings stand-in on loopback (the edge of the system)."""

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path != "/v1/embeddings" or body["model"] != "bge-m3":
            self.send_response(404)
            self.end_headers()
            return
        data = [{"index": i, "embedding": [float(len(text)), 1.0, 0.0]} for i, text in enumerate(body["input"])]
        payload = json.dumps({"data": list(reversed(data))}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def embeddings_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EmbeddingsServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def test_server_embeddings_come_in_input_order_and_unit_length(settings, embeddings_server):
    settings.EMBEDDING_URL = embeddings_server
    embedder = get_embedder("server:bge-m3")
    assert embedder.name == "server:bge-m3" and embedder.dimension == 3
    vectors = embedder.embed_passages(["a", "abc"])
    assert np.allclose(vectors[1], np.array([3.0, 1.0, 0.0]) / np.sqrt(10))
    assert np.allclose(vectors[0], np.array([1.0, 1.0, 0.0]) / np.sqrt(2))


def test_unknown_models_and_failing_servers_raise_a_clear_error(settings, embeddings_server):
    with pytest.raises(EmbeddingError, match="unknown EMBEDDING_MODEL"):
        get_embedder("word2vec")
    settings.EMBEDDING_URL = embeddings_server
    with pytest.raises(EmbeddingError, match="404"):
        get_embedder("server:no-such-model")


@pytest.mark.parametrize("name, passages, question", [
    # e5-small, the default, is multilingual: a German paraphrase finds the German passage
    ("e5-small", ["Mit shutdown -h now fährt root das System sofort herunter.", "Katzen schlafen gern in der Sonne."],
     "Wie schalte ich den Rechner sofort aus?"),
    # all-MiniLM-L6-v2 is English-only (on the German pair above it ranks the cats first)
    ("minilm", ["As root, shutdown -h now halts the system immediately.", "Cats like to sleep in the sun."],
     "How do I power off the computer right away?"),
])
def test_packaged_transformer_models_embed_and_rank_a_paraphrase_first(name, passages, question):
    """The packaged transformer models load from site-packages, offline, and rank by meaning."""
    embedder = get_embedder(name)
    vectors = embedder.embed_passages(passages)
    query = embedder.embed_query(question)
    assert vectors.shape == (2, embedder.dimension) and query.shape == (embedder.dimension,)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert vectors[0] @ query > vectors[1] @ query
