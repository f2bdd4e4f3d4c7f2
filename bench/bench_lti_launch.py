"""Benchmark: LTI 1.3 launch server time (POST /lti/launch: full validation, user/course/membership, login).

    .venv/bin/python bench/bench_lti_launch.py [--launches 200] [--users 20]

Against the real PostgreSQL and Redis named by $DATABASE_URL / $REDIS_URL (e.g. the embedded stack of
deploy/run.sh on 127.0.0.1:54329 / :6389); when they do not answer, a throwaway PostgreSQL and Redis are
started. A platform on a loopback http.server serves its JWKS; the first launches warm the JWKS cache
(Redis), then every measured launch does the whole OIDC flow (GET /lti/login, POST /lti/launch) through
Django's in-process test client: the time printed is the tool's server time, without network. The bench
registers its own platform and removes everything it created afterwards.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def ensure_redis():
    """Use $REDIS_URL when it answers, else start a throwaway Redis; returns the Stack to stop (or None)."""
    import redis

    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6389/0")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
        os.environ["REDIS_URL"] = url
        return None
    except redis.RedisError:
        from deploy.stack import Stack, free_port, start_redis

        stack, port = Stack(), free_port()
        start_redis(stack, Path(tempfile.mkdtemp(prefix="tutor-bench-redis-")), port)
        os.environ["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
        return stack


def percentiles(samples):
    """(p50, p95) in milliseconds."""
    ordered = sorted(samples)
    return 1000 * statistics.median(ordered), 1000 * ordered[int(0.95 * (len(ordered) - 1))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--launches", type=int, default=200)
    parser.add_argument("--users", type=int, default=20)
    args = parser.parse_args()
    os.environ.setdefault("LOG_LEVEL", "ERROR")
    redis_stack = ensure_redis()
    from bench_ingest import setup_django

    cleanup = setup_django()
    try:
        run(args)
    finally:
        cleanup()
        if redis_stack is not None:
            redis_stack.stop()


def run(args):
    """Register a loopback platform, warm up, time the launches, print the numbers, clean up."""
    import jwt
    from django.contrib.auth import get_user_model
    from django.test import Client

    from courses.models import Course
    from lti.keys import new_key_pair, public_jwk
    from lti.models import Deployment, LtiContext, LtiUser, Registration

    private, public = new_key_pair()
    jwks = json.dumps({"keys": [public_jwk(public, "bench-platform-key")]}).encode()
    jwks_fetches = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            jwks_fetches.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(jwks)))
            self.end_headers()
            self.wfile.write(jwks)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    registration = Registration.objects.create(issuer=base, client_id="bench-client", auth_login_url=base + "/auth",
                                               auth_token_url=base + "/token", key_set_url=base + "/jwks")
    Deployment.objects.create(registration=registration, deployment_id="1")
    target = "http://testserver/lti/launch"

    def one_launch(i):
        client = Client()
        t0 = time.perf_counter()
        response = client.get("/lti/login", {"iss": base, "login_hint": f"u{i}", "target_link_uri": target,
                                             "client_id": "bench-client", "lti_deployment_id": "1"})
        login_s = time.perf_counter() - t0
        assert response.status_code == 302, response.content
        query = parse_qs(urlparse(response["Location"]).query)
        now = int(time.time())
        claims = {
            "iss": base, "aud": "bench-client", "sub": f"bench-user-{i % args.users}", "iat": now, "exp": now + 300,
            "nonce": query["nonce"][0],
            "https://purl.imsglobal.org/spec/lti/claim/message_type": "LtiResourceLinkRequest",
            "https://purl.imsglobal.org/spec/lti/claim/version": "1.3.0",
            "https://purl.imsglobal.org/spec/lti/claim/deployment_id": "1",
            "https://purl.imsglobal.org/spec/lti/claim/target_link_uri": target,
            "https://purl.imsglobal.org/spec/lti/claim/resource_link": {"id": "r1"},
            "https://purl.imsglobal.org/spec/lti/claim/roles": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"],
            "https://purl.imsglobal.org/spec/lti/claim/context": {"id": "bench-course", "title": "Bench"},
            "https://purl.imsglobal.org/spec/lti/claim/launch_presentation": {"locale": "de-DE"},
        }
        id_token = jwt.encode(claims, private, algorithm="RS256", headers={"kid": "bench-platform-key"})
        t0 = time.perf_counter()
        response = client.post("/lti/launch", {"state": query["state"][0], "id_token": id_token})
        launch_s = time.perf_counter() - t0
        assert response.status_code == 302 and "/c/" in response["Location"], response.content[:500]
        return login_s, launch_s

    try:
        for i in range(5):  # warm-up: JWKS into the Redis cache, tool key, connections
            one_launch(i)
        fetches_before = len(jwks_fetches)
        samples = [one_launch(i) for i in range(args.launches)]
        login_p50, login_p95 = percentiles([s[0] for s in samples])
        launch_p50, launch_p95 = percentiles([s[1] for s in samples])
        print(f"LTI launch server time over {args.launches} launches ({args.users} users, warm JWKS cache, "
              f"JWKS fetches during the run: {len(jwks_fetches) - fetches_before})")
        print(f"  GET  /lti/login   p50 {login_p50:6.1f} ms   p95 {login_p95:6.1f} ms")
        print(f"  POST /lti/launch  p50 {launch_p50:6.1f} ms   p95 {launch_p95:6.1f} ms   (goal p95 <= 50 ms)")
    finally:
        course_ids = list(LtiContext.objects.filter(registration=registration).values_list("course_id", flat=True))
        user_ids = list(LtiUser.objects.filter(registration=registration).values_list("user_id", flat=True))
        registration.delete()
        Course.objects.filter(id__in=course_ids).delete()
        get_user_model().objects.filter(id__in=user_ids).delete()
        server.shutdown()


if __name__ == "__main__":
    main()
