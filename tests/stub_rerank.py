"""A rerank server on loopback (Cohere/vLLM/llama.cpp "results" shape or TEI's list), for tests and benchmarks.

No cross-encoder model ships in a package here. This stand-in scores a passage by how often it contains
``favourite`` (deterministic, like a cross-encoder that likes that word), or by word overlap with the
query when no favourite is set; ``broken`` makes it answer a malformed result.
"""

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def _words(text):
    return set(re.findall(r"\w{3,}", text.lower()))


class StubReranker:
    def __init__(self):
        self.favourite, self.shape, self.broken, self.requests = "", "results", False, []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stub.requests.append(body)
                if stub.broken:
                    payload = {"results": [{"index": 0}]}
                else:
                    query = _words(body["query"])
                    scored = [{"index": i, "score": (text.count(stub.favourite) if stub.favourite
                                                     else len(query & _words(text))) / (1 + len(text) / 1000)}
                              for i, text in enumerate(body["documents"])]
                    if stub.shape == "results":
                        payload = {"results": [{"index": s["index"], "relevance_score": s["score"]} for s in scored]}
                    else:
                        payload = scored
                data = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/rerank"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
