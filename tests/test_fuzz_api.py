"""Property-based tests over the JSON bodies of the coach and scripts APIs: any JSON
(or not-JSON) body yields a result or a clear error in the one shape, never a 500."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import signed_in

SETTINGS = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "text",
                    "context",
                    "role",
                    "turns",
                    "id",
                    "values",
                    "conversations",
                    "ts",
                    "agent",
                    "name",
                    "title",
                    "category",
                    "body",
                    "tags",
                    "status",
                    "x",
                ]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=20,
)


@pytest.fixture
def supervisor(app, users):
    return signed_in(app, users["supervisor"])


@pytest.fixture
def admin(app, users):
    return signed_in(app, users["admin"])


def check_shape(resp):
    assert resp.status_code < 500, resp.get_data(as_text=True)[:300]
    data = resp.get_json()
    if resp.status_code >= 400:
        assert set(data) == {"ok", "error", "status"} and data["status"] == resp.status_code


@SETTINGS
@given(body=json_values)
def test_coach_endpoints_any_json(supervisor, body):
    raw = json.dumps(body)
    for url in ("/api/v1/coach/check-reply", "/api/v1/coach/check"):
        check_shape(supervisor.post(url, data=raw, headers={"Content-Type": "application/json"}))


@SETTINGS
@given(raw=st.binary(max_size=300))
def test_coach_endpoints_any_bytes(supervisor, raw):
    for url in ("/api/v1/coach/check-reply", "/api/v1/coach/check"):
        check_shape(supervisor.post(url, data=raw, headers={"Content-Type": "application/json"}))


@SETTINGS
@given(body=json_values)
def test_script_render_any_json(supervisor, body):
    resp = supervisor.post(
        "/api/v1/scripts/hold-apology-1/render",
        data=json.dumps(body),
        headers={"Content-Type": "application/json"},
    )
    check_shape(resp)


def test_one_megabyte_single_line_reply(supervisor):
    resp = supervisor.post(
        "/api/v1/coach/check",
        json={"id": "big", "turns": [{"role": "agent", "text": "好" * 1_000_000}]},
    )
    check_shape(resp)
    assert resp.status_code == 200


@SETTINGS
@given(body=json_values)
def test_workspace_endpoints_any_json(admin, body):
    raw = json.dumps(body)
    headers = {"Content-Type": "application/json"}
    check_shape(admin.post("/api/v1/audits", data=raw, headers=headers))
    check_shape(admin.put("/api/v1/articles/product-fuzz", data=raw, headers=headers))
    check_shape(admin.post("/api/v1/render", data=raw, headers=headers))


@SETTINGS
@given(raw=st.binary(max_size=300))
def test_workspace_endpoints_any_bytes(admin, raw):
    headers = {"Content-Type": "application/json"}
    check_shape(admin.post("/api/v1/audits", data=raw, headers=headers))
    check_shape(admin.put("/api/v1/articles/product-fuzz", data=raw, headers=headers))
