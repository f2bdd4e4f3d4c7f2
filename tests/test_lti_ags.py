"""AGS against the independent platform: find/create a line item, post a score, read it back."""

import json
import re
import time

import pytest
from django.core.cache import cache

from courses.models import Course, Membership
from lti.ags import find_or_create_line_item, post_score, read_results
from lti.models import LtiContext, LtiLineItem, LtiUser
from lti.tasks import sync_roster
from tests.lti_support import ROLE, browser
from tests.support import (
    celery_app_for,
    make_released_set,
    page_forms,
    page_session,
    start_worker,
    stop_worker,
    wait_for,
)
from tests.test_lti_deep_linking import _form
from tutor.questions.models import Attempt, QuestionSet
from tutor.questions.tasks import grade_attempt

pytestmark = pytest.mark.django_db(transaction=True)


def test_line_item_score_and_results_round_trip(lti_platform):
    cache.clear()
    lti_platform.launch(browser(), user_id="student-9", roles=[ROLE + "Learner"])
    context = LtiContext.objects.get(context_id="course-A")
    assert context.lineitems_url == lti_platform.base + "/lineitems/course-A"

    item = find_or_create_line_item(context, "tutor-quiz-1", "Tutor quiz 1", 10)
    again = find_or_create_line_item(context, "tutor-quiz-1", "Tutor quiz 1", 10)
    assert again["id"] == item["id"] and len(lti_platform.lineitems) == 1

    student = LtiUser.objects.get(sub="student-9").user
    post_score(context, item["id"], student, 7, 10, activity_progress="Completed", grading_progress="FullyGraded")

    results = read_results(context, item["id"])
    assert results == [{"userId": "student-9", "resultScore": 7, "resultMaximum": 10, "scoreOf": item["id"]}]
    sent = next(iter(lti_platform.scores[1].values()))
    assert sent["activityProgress"] == "Completed" and sent["gradingProgress"] == "FullyGraded"
    assert sent["timestamp"]
    score_posts = [h for m, p, h in lti_platform.requests if p.endswith("/scores")]
    assert score_posts[0]["Content-Type"] == "application/vnd.ims.lis.v1.score+json"
    assert len([p for m, p, _h in lti_platform.requests if p == "/token"]) == 3  # one per scope set, then cached
    assert lti_platform.token_errors == []


def test_bad_progress_is_refused_before_any_request(lti_platform):
    lti_platform.launch(browser(), user_id="student-9")
    context = LtiContext.objects.get()
    with pytest.raises(ValueError, match="bad progress"):
        post_score(context, lti_platform.base + "/lineitems/course-A/1", LtiUser.objects.get().user, 1, 2,
                   activity_progress="Done")
    assert json.dumps(lti_platform.requests).count("/scores") == 0


# --- Grade passback of practice question sets: the product posts the score, the platform reads it back -----

def _place_graded(lti_platform, live_server, client, question_set):
    """The lecturer places the set as graded; the platform creates the line item from the content item."""
    page = lti_platform.launch(client, user_id="teacher", roles=[ROLE + "Instructor"], deep_link=True)
    action, fields = _form(page.text)
    answer = client.post(live_server.url + action, data={**fields, "choice": f"set:{question_set.pk}", "graded": "1"})
    _url, returned = _form(answer.text)
    [item] = lti_platform.conf.validate_deeplinking_resp({"JWT": returned["JWT"]})
    line_item = dict(item["lineItem"], id=f"{lti_platform.base}/lineitems/course-A/{len(lti_platform.lineitems) + 1}")
    lti_platform.lineitems[len(lti_platform.lineitems) + 1] = line_item
    return item, line_item


def _practise(lti_platform, live_server, student, custom, lineitem, choices):
    """The student opens the placed link (lands on the set) and submits `choices` (index per question); the
    attempt."""
    landing = lti_platform.launch(student, user_id="student-9", roles=[ROLE + "Learner"], custom=custom,
                                  lineitem=lineitem)
    assert landing.status_code == 302 and "/practice/" in landing.headers["Location"], landing.text
    return _submit(student, live_server.url + landing.headers["Location"], live_server, choices)


def _submit(student, url, live_server, choices):
    """Submit the practice form of the set page at url with `choices`; the attempt it made."""
    page = student.get(url)
    assert page.status_code == 200
    [form] = [f for f in page_forms(page.text) if f["attrs"].get("id") == "practice"]
    names = re.findall(r'name="(q-\d+)" value="0"', page.text)
    assert len(names) == len(choices)
    done = student.post(live_server.url + form["action"],
                        data={**form["fields"], **dict(zip(names, map(str, choices), strict=True))}, allow_redirects=False)
    assert done.status_code == 302, done.text
    return Attempt.objects.latest("submitted_at")


@pytest.mark.worker
def test_a_graded_set_placed_by_deep_linking_reports_each_attempt(lti_platform, live_server, celery_worker):
    cache.clear()
    teacher = browser()
    lti_platform.launch(teacher, user_id="teacher", roles=[ROLE + "Instructor"])
    question_set = make_released_set(Course.objects.get(), answers=(1, 0, 2))
    item, line_item = _place_graded(lti_platform, live_server, teacher, question_set)

    attempt = _practise(lti_platform, live_server, browser(), item["custom"], line_item["id"], [1, 0, 0])
    submitted = time.monotonic()
    assert (attempt.score, attempt.max_score) == (2, 3)
    recorded = LtiLineItem.objects.get(resource_id=question_set.resource_id)
    assert recorded.url == line_item["id"] and recorded.context.context_id == "course-A"

    wait_for(lambda: Attempt.objects.get(pk=attempt.pk).grade_status == Attempt.SENT)
    print(f"score at the platform {time.monotonic() - submitted:.2f} s after the submission")  # a number, no limit
    results = read_results(LtiContext.objects.get(), line_item["id"])
    assert results == [{"userId": "student-9", "resultScore": 2, "resultMaximum": 3, "scoreOf": line_item["id"]}]
    sent = lti_platform.scores[1]["student-9"]
    assert sent["activityProgress"] == "Completed" and sent["gradingProgress"] == "FullyGraded"
    assert sent["timestamp"] >= Attempt.objects.get().submitted_at.isoformat()  # when the rule's score was read
    assert len(lti_platform.lineitems) == 1 and lti_platform.token_errors == []
    review = teacher.get(f"{live_server.url}/c/{question_set.course_id}/questions/{question_set.pk}/").text
    assert "Graded in the LMS: 1 scores sent to the gradebook, 0 could not be sent." in review
    assert "1 attempt (67 % right on average)" in review


@pytest.mark.worker
def test_score_is_retried_and_the_line_item_found_by_resource_id(lti_platform, live_server, celery_worker):
    """The launch names no line item: the worker finds/creates it by the set's resourceId; the platform
    refuses the first two score posts, the task retries until the score is taken, exactly once."""
    cache.clear()
    lti_platform.launch(browser(), user_id="teacher", roles=[ROLE + "Instructor"])
    question_set = make_released_set(Course.objects.get(), answers=(2, 2))
    QuestionSet.objects.filter(pk=question_set.pk).update(graded=True)
    lti_platform.score_failures = 2

    custom = {"placement": "question_set", "question_set": str(question_set.pk)}
    attempt = _practise(lti_platform, live_server, browser(), custom, None, [2, 2])
    wait_for(lambda: Attempt.objects.get(pk=attempt.pk).grade_status == Attempt.SENT, timeout=90)

    [created] = lti_platform.lineitems.values()
    assert created["resourceId"] == question_set.resource_id and created["scoreMaximum"] == 2
    assert LtiLineItem.objects.get(resource_id=question_set.resource_id).url == created["id"]
    assert read_results(LtiContext.objects.get(), created["id"])[0]["resultScore"] == 2
    posts = [p for m, p, _h in lti_platform.requests if m == "POST" and p.endswith("/scores")]
    assert len(posts) == 3 and lti_platform.score_failures == 0
    assert Attempt.objects.get().grade_error == ""


def test_an_ungraded_set_sends_nothing(lti_platform, live_server):
    lti_platform.launch(browser(), user_id="teacher", roles=[ROLE + "Instructor"])
    question_set = make_released_set(Course.objects.get(), answers=(0,))
    custom = {"placement": "question_set", "question_set": str(question_set.pk)}
    attempt = _practise(lti_platform, live_server, browser(), custom, None, [0])
    assert attempt.score == 1 and attempt.grade_status == Attempt.NOT_GRADED
    assert not [p for _m, p, _h in lti_platform.requests if "/lineitems/" in p]


# --- The grading rule: what the gradebook holds after several attempts (issue 11) --------------------------------

@pytest.mark.worker
@pytest.mark.parametrize(("rule", "expected"), [("best", [2, 3, 3]), ("last", [2, 3, 1]), ("first", [2, 2, 2]),
                                                ("average", [2, 2.5, 2])])
def test_the_gradebook_holds_the_grading_rule_s_score_after_each_attempt(lti_platform, live_server, celery_worker,
                                                                         rule, expected):
    """Three attempts scoring 2, 3 and 1 of 3: after each one the platform's gradebook holds the rule's value; a
    fourth attempt beyond the three allowed is refused with a message and changes nothing."""
    cache.clear()
    teacher = browser()
    lti_platform.launch(teacher, user_id="teacher", roles=[ROLE + "Instructor"])
    question_set = make_released_set(Course.objects.get(), answers=(1, 0, 2))
    QuestionSet.objects.filter(pk=question_set.pk).update(grading=rule, attempts_allowed=3)
    item, line_item = _place_graded(lti_platform, live_server, teacher, question_set)
    student = browser()
    landing = lti_platform.launch(student, user_id="student-9", roles=[ROLE + "Learner"], custom=item["custom"],
                                  lineitem=line_item["id"])
    url = live_server.url + landing.headers["Location"]

    page = student.get(url).text
    rule_text = dict(QuestionSet.GRADING)[rule]
    assert str(rule_text) in page and "You may submit it 3 times." in page and "You have 3 attempts left." in page
    seen = []
    for choices in ([1, 0, 0], [1, 0, 2], [0, 1, 2]):  # 2, 3 and 1 right
        latest = _submit(student, url, live_server, choices)
        wait_for(lambda pk=latest.pk: Attempt.objects.get(pk=pk).grade_status == Attempt.SENT)
        seen.append(lti_platform.scores[1]["student-9"]["scoreGiven"])
    assert seen == expected
    assert lti_platform.scores[1]["student-9"]["scoreMaximum"] == 3

    page = student.get(url).text
    assert "You have used every attempt at this set." in page and 'id="practice"' not in page
    first = question_set.questions.order_by("position").first()
    refused = student.post(url, data={f"q-{first.pk}": "1", "csrfmiddlewaretoken": page_session(page)["csrf"]})
    assert "You have used all 3 attempts at this set; no more answers are taken." in refused.text
    assert Attempt.objects.filter(question_set=question_set).count() == 3
    assert lti_platform.scores[1]["student-9"]["scoreGiven"] == expected[-1]


@pytest.mark.worker
def test_changing_the_rule_sends_every_student_s_score_again(lti_platform, live_server, celery_worker):
    cache.clear()
    teacher = browser()
    lti_platform.launch(teacher, user_id="teacher", roles=[ROLE + "Instructor"])
    question_set = make_released_set(Course.objects.get(), answers=(1, 0, 2))
    QuestionSet.objects.filter(pk=question_set.pk).update(grading="last")
    item, line_item = _place_graded(lti_platform, live_server, teacher, question_set)
    student = browser()
    for choices in ([1, 0, 2], [0, 1, 1]):  # 3, then 0 right
        latest = _practise(lti_platform, live_server, student, item["custom"], line_item["id"], choices)
        wait_for(lambda pk=latest.pk: Attempt.objects.get(pk=pk).grade_status == Attempt.SENT)
    assert lti_platform.scores[1]["student-9"]["scoreGiven"] == 0

    review = teacher.get(f"{live_server.url}/c/{question_set.course_id}/questions/{question_set.pk}/").text
    [form] = [f for f in page_forms(review) if f["attrs"].get("id") == "grading"]
    teacher.post(live_server.url + form["action"], data={**form["fields"], "grading": "best", "attempts_allowed": "0"})
    wait_for(lambda: lti_platform.scores[1]["student-9"]["scoreGiven"] == 3)
    assert QuestionSet.objects.get(pk=question_set.pk).grading == "best"


# --- Grades never wait: the calls to the LMS have their own queue and worker (issue 24 §2) ----------------------

@pytest.mark.slow
def test_scores_and_roster_syncs_reach_the_platform_with_only_the_lti_worker_running(lti_platform, worker_env,
                                                                                      settings, tmp_path):
    """Workers on a private broker, routed by CELERY_TASK_ROUTES: nothing consumes "generate" (as when a
    generation holds its one worker for minutes), yet the worker of queue "lti" posts the score and syncs the
    roster. Before, both waited on "generate" behind every queued generation."""
    broker = settings.REDIS_URL.rsplit("/", 1)[0] + "/12"
    app = celery_app_for(broker)
    app.conf.task_routes = settings.CELERY_TASK_ROUTES
    app.connection_for_write().default_channel.client.flushdb()
    lti_platform.launch(browser(), user_id="teacher", roles=[ROLE + "Instructor"])
    question_set = make_released_set(Course.objects.get(), answers=(1, 0))
    QuestionSet.objects.filter(pk=question_set.pk).update(graded=True)
    custom = {"placement": "question_set", "question_set": str(question_set.pk)}
    lti_platform.launch(browser(), user_id="student-9", roles=[ROLE + "Learner"], custom=custom)
    student = LtiUser.objects.get(sub="student-9").user
    attempt = Attempt.objects.create(question_set=question_set, user=student, answers={}, credits={}, score=1,
                                     max_score=2, grade_status=Attempt.PENDING)
    lti_platform.members = [{"user_id": "student-10", "roles": [ROLE + "Learner"], "status": "Active"}]

    worker = start_worker(dict(worker_env, CELERY_BROKER_URL=broker), tmp_path / "lti.log", "lti",
                          pool="threads", concurrency=4)
    try:
        app.send_task(grade_attempt.name, args=[attempt.pk])
        app.send_task(sync_roster.name, args=[LtiContext.objects.get().pk])
        wait_for(lambda: Attempt.objects.get(pk=attempt.pk).grade_status == Attempt.SENT, 60,
                 f"the score, sent by the lti worker:\n{worker.log_path.read_text()[-3000:]}")
        wait_for(lambda: Membership.objects.filter(user__lti_links__sub="student-10").exists(), 60,
                 f"the roster sync by the lti worker:\n{worker.log_path.read_text()[-3000:]}")
    finally:
        stop_worker(worker)
        app.connection_for_write().default_channel.client.flushdb()
    [created] = lti_platform.lineitems.values()
    assert lti_platform.scores[1]["student-9"]["scoreGiven"] == 1
    assert created["resourceId"] == question_set.resource_id
