"""What the rooms' APIs (tutor.chat.api, tutor.questions.api) share: the request body's check and the If-Match
header's description."""

from drf_spectacular.utils import OpenApiParameter


def body_of(request, serializer_class):
    """The request's body checked by the serializer: its validated data (a 400 problem with each field's message
    otherwise)."""
    checked = serializer_class(data=request.data)
    checked.is_valid(raise_exception=True)
    return checked.validated_data


IF_MATCH = OpenApiParameter("If-Match", str, OpenApiParameter.HEADER, required=False,
                            description="The ETag the change is based on: 412 if it was changed since.")
