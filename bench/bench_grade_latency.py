"""Score latency while question generation runs: submission -> the platform has the score (issue 24 §2).

Starts throwaway PostgreSQL+pgvector and Redis, the stub inference server of tests/stub_llm.py (a generation
request takes --generation-seconds), one web process (uvicorn), and the workers as deployed (deploy/role.py's
commands): chat (threads), generate (one task at a time), lti (threads). An independent LTI 1.3 platform
(tests/lti_support.py's FakeLMS: real HTTP, token endpoint, AGS line items and scores) registers the tool; a
teacher and --students students launch into a graded question set through the web process.

1. idle: each student submits the set's form (HTTP POST, as the practice page does), one after another; the
   latency is from the POST to the moment the platform took the score (its HTTP handler's clock).
2. loaded: --items generation items queued on the "generate" queue (one question set of one question each, each
   one model request), and while they run the same submissions again. It also asks --chat-samples chat
   questions idle and loaded (time to the first streamed piece), to show that chat does not wait either.

Prints p50/p95 of each, how many generation items were still waiting, and the CPU and its flags.

Usage: .venv/bin/python bench/bench_grade_latency.py [--items 200] [--students 20] [--generation-seconds 1]
"""

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_capacity import QUESTIONS, sample  # noqa: E402
from bench.common import pct, queue_generation, start_chat_side, throwaway_services  # noqa: E402


def seconds(values):
    """p50 / p95 of latencies in seconds, for printing."""
    return f"p50 {statistics.median(values):.3f} s  p95 {pct(values, 95):.3f} s  max {max(values):.3f} s (n={len(values)})"


def submit_and_wait(lms, session, base, url, user_id, timeout=600):
    """Submit the practice form at url (every first option); seconds from the POST to the platform's score."""
    from tests.support import page_forms

    page = session.get(url)
    [form] = [f for f in page_forms(page.text) if f["attrs"].get("id") == "practice"]
    names = re.findall(r'name="(q-\d+)" value="0"', page.text)
    seen = len(lms.score_times)
    started = time.time()
    done = session.post(base + form["action"], data={**form["fields"], **dict.fromkeys(names, "0")},
                        allow_redirects=False)
    if done.status_code != 302:
        raise RuntimeError(f"submission refused: {done.status_code} {done.text[:300]}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        taken = [when for when, user in lms.score_times[seen:] if user == user_id]
        if taken:
            return taken[0] - started
        time.sleep(0.005)
    raise RuntimeError(f"no score for {user_id} within {timeout} s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200, help="generation items queued on the generate queue")
    parser.add_argument("--students", type=int, default=20, help="submissions (one per student) idle and loaded")
    parser.add_argument("--generation-seconds", type=float, default=1.0, help="time of one generation request")
    parser.add_argument("--chat-samples", type=int, default=10, help="chat questions idle and loaded (0: none)")
    args = parser.parse_args()

    with throwaway_services(LOG_LEVEL="WARNING", EMBEDDING_MODEL="static") as (stack, env, _scratch, logs):
        import requests

        from courses.models import Course, Section
        from deploy.role import worker_command
        from lti.models import LtiContext
        from tests.lti_support import ROLE, FakeLMS
        from tests.stub_llm import StubLLM
        from tests.support import INIT_TEXT, make_course, make_member, make_released_set, point_tutor_at
        from tutor.questions.models import QuestionSet

        def reply(body):  # a question for generation requests, words for chat
            return json.dumps({"questions": QUESTIONS}) if not body.get("stream") else " ".join(["wort"] * 20)

        stub = StubLLM(reply=reply, first_token_delay=0.3, token_delay=0.02,
                       complete_seconds=args.generation_seconds).start()
        chat_worker, web, base = start_chat_side(stack, env, logs, threads=8, log_level="WARNING")
        for queue in ("generate", "lti"):  # the deployment's own commands (deploy/role.py)
            stack.spawn(f"{queue}-worker", worker_command(dict(env, LOG_LEVEL="WARNING"), queue), env=env,
                        stdout=logs, stderr=subprocess.STDOUT)
        lms = FakeLMS(base)
        lms.register_in_tool()
        lms.launch(requests.Session(), user_id="teacher", roles=[ROLE + "Instructor"])
        graded = make_released_set(LtiContext.objects.get().course, answers=(1, 0, 2))
        QuestionSet.objects.filter(pk=graded.pk).update(graded=True, attempts_allowed=0)
        custom = {"placement": "question_set", "question_set": str(graded.pk)}
        students = []
        for i in range(args.students):
            session = requests.Session()
            landing = lms.launch(session, user_id=f"student-{i}", roles=[ROLE + "Learner"], custom=custom)
            if landing.status_code != 302:
                raise RuntimeError(f"launch failed: {landing.status_code} {landing.text[:300]}")
            students.append((session, base + landing.headers["Location"], f"student-{i}"))
        chat_course = make_course(("systemstart.md", INIT_TEXT))
        for course in Course.objects.all():
            point_tutor_at(course, stub.url)
        tokens = [make_member(chat_course)[1] for _ in range(2)]
        section = Section.objects.filter(document__course=chat_course).first()

        pools = {queue: " x".join(worker_command(env, queue)[i + 1] for i in (
            worker_command(env, queue).index("--pool"), worker_command(env, queue).index("--concurrency")))
            for queue in ("generate", "lti")}
        print(f"workers as deployed: chat (threads x8), generate ({pools['generate']}), lti ({pools['lti']}); a "
              f"generation request takes {args.generation_seconds:.1f} s; load average {os.getloadavg()[0]:.1f}",
              flush=True)
        session, url, user = students[0]
        submit_and_wait(lms, session, base, url, user)  # warm-up: the service token, the line item
        idle = [submit_and_wait(lms, session, base, url, user) for session, url, user in students]
        chat_idle = asyncio.run(sample(base, chat_course.pk, tokens, args.chat_samples, "idle")) \
            if args.chat_samples else []

        sets = queue_generation(chat_course, section, args.items)
        deadline = time.monotonic() + 60
        while not stub.active and time.monotonic() < deadline:  # the generate worker is busy
            time.sleep(0.1)
        loaded = [submit_and_wait(lms, session, base, url, user) for session, url, user in students]
        chat_loaded = asyncio.run(sample(base, chat_course.pk, tokens, args.chat_samples, "loaded")) \
            if args.chat_samples else []
        waiting = QuestionSet.objects.filter(pk__in=sets, generation__in=[QuestionSet.QUEUED,
                                                                          QuestionSet.RUNNING]).count()

        print(f"score latency idle:    {seconds(idle)}", flush=True)
        print(f"score latency loaded:  {seconds(loaded)}  ({waiting} of {args.items} generation items still "
              f"queued or running after the last score)", flush=True)
        if chat_idle:
            print(f"chat first piece idle:   {seconds(chat_idle)}", flush=True)
            print(f"chat first piece loaded: {seconds(chat_loaded)}", flush=True)
        print(f"load average {os.getloadavg()[0]:.1f}", flush=True)
        lms.close()
        stub.stop()


if __name__ == "__main__":
    main()
