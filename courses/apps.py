from django.apps import AppConfig


class CoursesConfig(AppConfig):
    """The courses app; it registers with the project (config/) how a session ticket is redeemed, and its part of a
    person's data and of the retention run."""

    name = "courses"

    def ready(self):
        """Connect the signal that drops a course's HNSW index; fill the project's registries (config.middleware,
        config.privacy)."""
        from django.db.models.signals import post_delete

        from courses import access, privacy
        from courses.models import EmbeddingIndex

        post_delete.connect(_drop_course_hnsw, sender=EmbeddingIndex, dispatch_uid="courses-drop-course-hnsw")
        access.register()
        privacy.register()


def _drop_course_hnsw(sender, instance, **kwargs):
    """An embedding index's partial HNSW index goes with it (model switch, course deleted)."""
    from courses.vector_index import drop_course_hnsw

    drop_course_hnsw(instance.pk)
