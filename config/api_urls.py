"""The URLs of the API (``/api/v1/``): the apps' endpoints (courses/api.py, tutor/chat/api.py,
tutor/questions/api.py) on one router, the OpenAPI 3 schema generated from them (drf-spectacular; committed as
docs/openapi.yaml) and its docs page."""

from django.http import JsonResponse
from django.urls import path, re_path
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.routers import SimpleRouter
from rest_framework.views import APIView

from config.api import PROBLEM, problem
from courses import api as courses_api
from tutor.chat import api as chat_api
from tutor.questions import api as questions_api

app_name = "api"


class ApiRootView(APIView):
    """Where the API begins: its schema, its docs page and the list of courses."""

    permission_classes = [AllowAny]

    @extend_schema(exclude=True)
    def get(self, request):
        return Response({name: reverse(f"api:{name}", request=request) for name in ("schema", "docs", "course-list")})


@csrf_exempt
def not_found(request, path):
    """A path under /api/v1/ that names no endpoint: a 404 problem, like every other refusal of the API."""
    body = problem(404, _("There is no such endpoint in this API."), code="not_found", instance=request.path)
    return JsonResponse(body, status=404, content_type=PROBLEM)


COURSE = "courses/<int:course_id>"
router = SimpleRouter(use_regex_path=False)
router.register("courses", courses_api.CourseViewSet, basename="course")
router.register(f"{COURSE}/documents", courses_api.DocumentViewSet, basename="course-documents")
router.register(f"{COURSE}/sections", questions_api.SectionViewSet, basename="course-sections")
router.register(f"{COURSE}/conversations", chat_api.ConversationViewSet, basename="course-conversations")
router.register(f"{COURSE}/question-sets", questions_api.QuestionSetViewSet, basename="course-question-sets")
router.register(f"{COURSE}/question-sets/<int:set_id>/questions", questions_api.QuestionViewSet,
                basename="course-questions")
router.register(f"{COURSE}/generation-runs", questions_api.GenerationRunViewSet, basename="course-generation-runs")

urlpatterns = [
    path("", ApiRootView.as_view(), name="root"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema"), name="docs"),
    path(f"{COURSE}/settings/", chat_api.SettingsView.as_view(), name="course-settings"),
    path(f"{COURSE}/usage/", chat_api.UsageView.as_view(), name="course-usage"),
    path(f"{COURSE}/search/", courses_api.SearchView.as_view(), name="course-search"),
    path(f"{COURSE}/passages/<int:chunk_id>/", courses_api.PassageView.as_view(), name="course-passage"),
    path(f"{COURSE}/ask/", chat_api.ask, name="course-ask"),
    path(f"{COURSE}/messages/<int:message_id>/", chat_api.MessageView.as_view(), name="course-message"),
    path(f"{COURSE}/messages/<int:message_id>/stream/", chat_api.answer_stream, name="course-message-stream"),
    path(f"{COURSE}/messages/<int:message_id>/retry/", chat_api.RetryView.as_view(), name="course-message-retry"),
    *router.urls,
    re_path(r"^(?P<path>.*)$", not_found),
]
