"""/api/v1/docs: the API documented for people, from this server's own files (no CDN)."""

from __future__ import annotations

import re

import pytest


@pytest.mark.django_db
def test_the_docs_page_shows_swagger_ui_over_our_openapi_document(client):
    response = client.get("/api/v1/docs")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert 'data-schema-url="/api/v1/openapi.json"' in page
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources and all(s.startswith("/") for s in sources), sources  # nothing from another site
    for source in sources:
        asset = client.get(source)
        assert asset.status_code == 200, source
        assert b"".join(asset.streaming_content) if asset.streaming else asset.content, source


@pytest.mark.django_db
def test_the_docs_page_refuses_other_methods_in_json(client):
    response = client.post("/api/v1/docs")
    assert response.status_code == 405 and response.json()["error"]["code"] == "method_not_allowed"


@pytest.mark.django_db
def test_the_favicon_exists(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    icon = client.get(response["Location"])
    assert icon.status_code == 200 and b"<svg" in b"".join(icon.streaming_content)
