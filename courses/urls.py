"""URLs of the courses app: the lecturer's documents, members and API tokens pages, the reader view of a cited
passage, and the session's ticket and renewal endpoints for the pages' scripts."""

from django.urls import path

from courses import views

app_name = "courses"
urlpatterns = [
    path("<int:course_id>/documents/", views.documents, name="documents"),
    path("<int:course_id>/documents/<int:document_id>/replace/", views.replace, name="replace"),
    path("<int:course_id>/documents/<int:document_id>/reindex/", views.reindex, name="reindex"),
    path("<int:course_id>/documents/<int:document_id>/delete/", views.delete, name="delete"),
    path("<int:course_id>/passage/<int:chunk_id>/", views.passage, name="passage"),
    path("<int:course_id>/members/", views.members, name="members"),
    path("<int:course_id>/members/sync/", views.sync_members, name="sync-members"),
    path("<int:course_id>/api-tokens/", views.api_tokens, name="api-tokens"),
    path("<int:course_id>/api-tokens/<int:token_id>/revoke/", views.revoke_api_token, name="revoke-api-token"),
    path("session/ticket/", views.session_ticket, name="session-ticket"),
    path("session/renew/", views.session_renew, name="session-renew"),
]
