"""The API's documentation: the OpenAPI 3 document generated from the protos (tools/protogen.py, kept fresh
with gen/) is valid, names every documented endpoint with its token requirement, and the edge serves it and
a Swagger UI page without a token."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate

from tests.edge.endpoints import DOCUMENTED
from tests.edge.http import call
from tests.harness.envoy import Edge, EdgeFactory, render

DOCUMENT = Path(render.DEFAULT_OPENAPI_FILE)


@pytest.fixture
def lone_edge(envoy_edge_factory: EdgeFactory) -> Edge:
    """An edge in front of no service: the documentation is Envoy's own answer."""
    return envoy_edge_factory({}, wait_healthy=False)


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return json.loads(DOCUMENT.read_text())


def test_the_document_is_valid_openapi_3(document: dict[str, Any]) -> None:
    validate(document)
    assert document["openapi"].startswith("3.")


def test_every_documented_endpoint_is_described(document: dict[str, Any]) -> None:
    camel = {ep: re.sub(r"_([a-z])", lambda m: m.group(1).upper(), ep.template) for ep in DOCUMENTED}
    for endpoint, path in camel.items():
        operation = document["paths"].get(path, {}).get(endpoint.verb.lower())
        assert operation, f"{endpoint} is not in the OpenAPI document"
        assert operation["description"], f"{endpoint} has no description (its proto comment)"
        public = endpoint.template == render.OPEN_PATH
        assert operation.get("security") == ([] if public else None), endpoint  # None: the global bearer
    assert document["security"] == [{"bearer": []}]
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_the_edge_serves_the_document_and_the_docs_page_without_a_token(lone_edge: Edge) -> None:
    reply = call(lone_edge.rest_url, "GET", render.OPENAPI_PATH)
    assert reply.status == 200 and reply.content_type.startswith("application/json")
    assert reply.body == DOCUMENT.read_bytes()
    page = call(lone_edge.rest_url, "GET", render.DOCS_PATH)
    assert page.status == 200 and page.content_type.startswith("text/html")
    assert render.OPENAPI_PATH in page.body.decode()
    for asset, kind in (("swagger-ui-bundle.js", "text/javascript"), ("swagger-ui.css", "text/css")):
        got = call(lone_edge.rest_url, "GET", f"{render.DOCS_PATH}/{asset}")
        assert got.status == 200 and got.content_type.startswith(kind), asset
        assert got.body == (render.DEFAULT_SWAGGER_UI_DIR / asset).read_bytes()
    # Only those exact paths are open: anything beside them still needs a token.
    assert call(lone_edge.rest_url, "GET", render.DOCS_PATH + "/index.html").status == 401
    assert call(lone_edge.rest_url, "POST", render.OPENAPI_PATH, body={}).status == 401


def test_examples_in_the_proto_comments_are_in_the_document_and_fit_their_schemas(
    document: dict[str, Any],
) -> None:
    """A comment's example request names only fields of its request (camelCase, as the edge takes them)."""
    operation = document["paths"]["/api/v1/usdt/transfer"]["post"]
    text = operation["description"]
    assert "Example request" in text and "Example response" in text
    request = json.loads(text.split("Example request", 1)[1].split(":", 1)[1].split("Example response")[0])
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = document["components"]["schemas"][ref.rpartition("/")[2]]
    assert request and set(request) <= set(schema["properties"]), set(request) - set(schema["properties"])
