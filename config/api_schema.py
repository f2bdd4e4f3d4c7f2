"""The OpenAPI schema's shared parts (drf-spectacular): the problem details object and the error responses every
operation documents. Apart from config/api.py, which DRF's own views import through the settings."""

from http import HTTPStatus

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers

from config.api import PROBLEM


class ProblemSerializer(serializers.Serializer):
    """An error (RFC 9457): ``detail`` says what went wrong in the reader's language; ``errors`` lists the
    messages of each field of a refused input."""

    type = serializers.CharField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField(required=False)
    code = serializers.CharField(required=False)
    errors = serializers.DictField(required=False, child=serializers.ListField(child=serializers.CharField()))
    instance = serializers.CharField(required=False)


class ProblemAutoSchema(AutoSchema):
    """drf-spectacular's schema, with the problem responses each operation can give: 400, 401, 403, 404 and 429
    everywhere, 412 on updates (If-Match), 415 where a body is read."""

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        codes = [400, 401, 403, 404, 429]
        if self.method in ("PUT", "PATCH"):
            codes.append(412)
        if self.method in ("POST", "PUT", "PATCH"):
            codes.append(415)
        for code in codes:
            if str(code) not in responses:
                responses[str(code)] = self._get_response_for_code(ProblemSerializer, str(code), [PROBLEM], direction)
                responses[str(code)]["description"] = HTTPStatus(code).phrase
        return responses




class ApiTokenScheme(OpenApiAuthenticationExtension):
    """The API token in the schema: ``Authorization: Bearer <token>``."""

    target_class = "courses.access.ApiTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer",
                "description": "A course's token (made on the course's *API tokens* page) or an admin's token "
                               "(`manage.py create_api_token`)."}

