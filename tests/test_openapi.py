"""The API against its own OpenAPI description: schemathesis generates requests; no server error, ever."""

from __future__ import annotations

import shutil

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from tests.conftest import CORPUS, make_site


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory):
    from tests.fakes import HashingEmbedder

    folder = tmp_path_factory.mktemp("openapi")
    shutil.copytree(CORPUS, folder / "articles")
    app = make_site(folder, folder / "articles", HashingEmbedder())
    return schemathesis.openapi.from_wsgi("/api/openapi.json", app)


def operations(schema) -> list:
    return [result.ok() for result in schema.get_all_operations()]


def test_every_operation_is_described(api_schema):
    """The description covers the four API routes."""
    assert {op.path for op in operations(api_schema)} == {"/api/search", "/api/articles", "/api/articles/{slug}",
                                                          "/api/categories"}


def test_api_never_fails_and_matches_its_description(api_schema):
    """Generated requests (odd strings, bounds, unknown slugs) get a documented status and a valid body."""
    checks = [not_a_server_error, status_code_conformance, response_schema_conformance]

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(data=st.data())
    def run(data):
        operation = data.draw(st.sampled_from(operations(api_schema)))
        case = data.draw(operation.as_strategy())
        case.call_and_validate(checks=checks)

    run()
