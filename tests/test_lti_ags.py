"""AGS against the independent platform: find/create a line item, post a score, read it back."""

import json

import pytest
from django.core.cache import cache

from lti.ags import find_or_create_line_item, post_score, read_results
from lti.models import LtiContext, LtiUser
from tests.lti_support import ROLE, browser

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
