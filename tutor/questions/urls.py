"""URLs of the question bank and practice: the lecturer's Questions pages and the students' practice pages."""

from django.urls import path

from tutor.questions import practice_views, views

urlpatterns = [
    path("c/<int:course_id>/questions/", views.question_sets, name="questions"),
    path("c/<int:course_id>/questions/checks/", views.question_checks, name="question-checks"),
    path("c/<int:course_id>/questions/import/", views.questions_import, name="questions-import"),
    path("c/<int:course_id>/questions/runs/<int:run_id>/", views.generation_run, name="generation-run"),
    path("c/<int:course_id>/questions/runs/<int:run_id>/action/", views.generation_run_action,
         name="generation-run-action"),
    path("c/<int:course_id>/questions/<int:set_id>/", views.question_set, name="question-set"),
    path("c/<int:course_id>/questions/<int:set_id>/action/", views.question_set_action, name="question-set-action"),
    path("c/<int:course_id>/questions/<int:set_id>/q/<int:question_id>/", views.question_edit, name="question-edit"),
    path("c/<int:course_id>/questions/<int:set_id>/export.xml", views.question_set_export, {"kind": "xml"},
         name="question-set-xml"),
    path("c/<int:course_id>/questions/<int:set_id>/export.gift", views.question_set_export, {"kind": "gift"},
         name="question-set-gift"),
    path("c/<int:course_id>/questions/<int:set_id>/statistics/", views.question_set_statistics,
         name="question-set-statistics"),
    path("c/<int:course_id>/questions/<int:set_id>/statistics.csv", views.question_set_statistics, {"as_csv": True},
         name="question-set-statistics-csv"),
    path("c/<int:course_id>/practice/", practice_views.practice_sets, name="practice"),
    path("c/<int:course_id>/practice/<int:set_id>/", practice_views.practice_set, name="practice-set"),
    path("c/<int:course_id>/practice/<int:set_id>/attempt/<int:attempt_id>/", practice_views.practice_result,
         name="practice-result"),
]
