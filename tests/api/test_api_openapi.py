"""GET /api/v1/openapi.json: a valid OpenAPI 3.1 document of the API, generated from the request models."""

from __future__ import annotations

import pytest
from openapi_spec_validator import validate

from assistant.api.schema import TurnIn


@pytest.fixture
def document(client, db) -> dict:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    return response.json()


def test_it_is_a_valid_openapi_3_1_document(document):
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_it_describes_every_endpoint(document):
    paths = document["paths"]
    assert set(paths["/api/v1/turns"]) == {"post"}
    assert set(paths["/api/v1/turns/{turn_id}"]) == {"get"}
    assert set(paths["/api/v1/turns/{turn_id}/feedback"]) == {"post"}
    assert "/api/v1/openapi.json" in paths
    create = paths["/api/v1/turns"]["post"]
    assert {"201", "400", "401", "404", "405", "413"} <= set(create["responses"])


def test_it_declares_the_token_scheme(document):
    scheme = document["components"]["securitySchemes"]["token"]
    assert scheme == {**scheme, "type": "apiKey", "in": "header", "name": "Authorization"}
    assert document["security"] == [{"token": []}]
    assert document["paths"]["/api/v1/openapi.json"]["get"]["security"] == []


def test_request_schemas_come_from_the_models(document, settings):
    schemas = document["components"]["schemas"]
    assert set(schemas["TurnIn"]["properties"]) == set(TurnIn.model_fields)
    assert {"TurnIn", "HypothesisIn", "FeedbackIn", "BargeInIn", "ThumbsIn", "TurnOut", "ErrorOut"} <= set(schemas)
    text = next(s for s in schemas["TurnIn"]["properties"]["text"]["anyOf"] if s.get("type") == "string")
    assert text["maxLength"] == settings.MAX_UTTERANCE_CHARS
    assert schemas["TurnIn"]["additionalProperties"] is False
