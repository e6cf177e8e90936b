"""What schemathesis found (test_api_fuzz.py), kept as plain examples."""

from __future__ import annotations

import pytest
from api_helpers import post_json, request_body


def test_a_whole_float_is_an_integer(client):
    # JSON schema's "integer" accepts 4900.0; the API refused it
    response = post_json(client, "/v1/recommendations", request_body(amount_minor=4900.0))
    assert response.status_code == 200, response.json()


@pytest.mark.parametrize("when", ["2263-01-01T00:00:00Z", "0446-06-30T11:01:52Z"])
def test_timestamps_outside_the_supported_years_are_refused(client, when):
    # these crashed the rules fallback too (pandas' nanosecond range): a 500
    response = post_json(client, "/v1/recommendations", request_body(failed_at=when))
    assert response.status_code == 422
    assert response.json()["code"] == "out_of_range"
    assert response.json()["field"] == "failed_at"


def test_an_id_with_a_line_break_inside_is_refused_as_the_document_says(client):
    response = post_json(client, "/v1/recommendations", request_body(invoice_id="in\x1c1"))
    assert response.status_code == 422
    assert response.json()["field"] == "invoice_id"


def test_batch_items_that_are_not_objects_get_item_errors(client):
    response = post_json(client, "/v1/recommendations/batch", {"items": [None, 3]})
    assert response.status_code == 200
    assert [i["error"]["field"] for i in response.json()["items"]] == ["items[0]", "items[1]"]


def test_the_document_states_the_row_rules_and_lists(client):
    components = client.get("/openapi.json").json()["components"]["schemas"]
    request = components["RecommendationRequest"]
    assert request["if"]["properties"]["payment_method"] == {"const": "card"}
    assert "EUR" in request["properties"]["currency"]["enum"]
    assert components["AttemptEvent"]["then"]["required"] == ["decline_code"]
