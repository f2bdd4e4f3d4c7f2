from django.apps import AppConfig


class CoursesConfig(AppConfig):
    name = "courses"

    def ready(self):
        from django.db.models.signals import post_delete

        from courses.models import EmbeddingIndex

        post_delete.connect(_drop_course_hnsw, sender=EmbeddingIndex, dispatch_uid="courses-drop-course-hnsw")


def _drop_course_hnsw(sender, instance, **kwargs):
    """An embedding index's partial HNSW index goes with it (model switch, course deleted)."""
    from courses.vector_index import drop_course_hnsw

    drop_course_hnsw(instance.pk)
