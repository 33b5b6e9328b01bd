"""``Redactor``: recorded payloads never carry secrets and never exceed their size caps."""

from __future__ import annotations

import json
import string
from typing import TYPE_CHECKING

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry import trace

from orchestrator.tracing import ATTR_TOOL_CALL_ARGUMENTS, MASK, Redactor, record_payload, tracer

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

SECRET = "s3cr3t-value-from-env"


def test_configured_secret_values_are_masked_wherever_they_occur() -> None:
    redactor = Redactor.from_secrets([SECRET], ["header-token-123"])
    value = {
        "query": f"select * from t where key = '{SECRET}'",
        "nested": [{"note": f"prefix{SECRET}suffix"}],
        f"key-{SECRET}": "x",
        "auth_header": "Bearer header-token-123",
    }
    text = redactor.attribute(value)
    assert SECRET not in text
    assert "header-token-123" not in text
    assert json.loads(text)["query"] == f"select * from t where key = '{MASK}'"


@pytest.mark.parametrize(
    ("text", "leak"),
    [
        ("Authorization: Bearer abcdefghijklmnop1234", "abcdefghijklmnop1234"),
        ("basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="),
        ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U", "eyJhbGci"),
        ("token ghp_16C7e42F292c6912E7710c838347Ae178B4a", "ghp_16C7e42F292c"),
        ("key sk-proj-abcdefghijklmnopqrstuvwx", "sk-proj-abcdefghijklmnop"),
        ("aws AKIAIOSFODNN7EXAMPLE here", "AKIAIOSFODNN7EXAMPLE"),
        ("slack xoxb-1234567890-abcdefghij", "xoxb-1234567890"),
        ("session 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "9f86d081884c7d65"),
        ("blob Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MEFCQ0RFRkdISUpLTE1O", "Zm9vYmFyYmF6cXV4MTIz"),
        ("postgres://admin:hunter2@db.internal:5432/app", "hunter2"),
        ("connect with password=hunter2&user=x", "hunter2"),
        ('{"api_key": "not-a-real-key"}', "not-a-real-key"),
    ],
)
def test_token_like_strings_are_masked_in_free_text(text: str, leak: str) -> None:
    redacted = Redactor().text(text)
    assert leak not in redacted
    assert MASK in redacted


@pytest.mark.parametrize(
    "text",
    [
        "select service, severity, title from incidents where resolved_at is null",
        "checkout latency p99 rose to 1840.5 ms at 2026-11-20T07:55:00Z",
        "/srv/app/releases/2026-11-20/config.yaml",
        "INC-1014 payment_gateway_timeout_after_retries_exhausted_in_region",
        "550e8400-e29b-41d4-a716-446655440000",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert Redactor().text(text) == text


def test_values_of_secret_named_keys_are_masked_but_numbers_and_booleans_are_kept() -> None:
    value = {
        "password": "hunter2",
        "Authorization": "anything at all",
        "client_secret": {"nested": "structure"},
        "X-Api-Key": "k",
        "session_id": "abc",
        "max_tokens": 512,
        "use_token": True,
        "token": None,
        "author": "Ada Lovelace",
    }
    assert Redactor().redact(value) == {
        "password": MASK,
        "Authorization": MASK,
        "client_secret": MASK,
        "X-Api-Key": MASK,
        "session_id": MASK,
        "max_tokens": 512,
        "use_token": True,
        "token": None,
        "author": "Ada Lovelace",
    }


def test_sizes_are_capped_per_string_per_container_by_depth_and_in_total() -> None:
    redactor = Redactor(max_chars=200, max_string_chars=10, max_items=3, max_depth=3)
    assert redactor.redact("x" * 25) == "x" * 10 + "…[+15 chars]"
    assert redactor.redact(list(range(5))) == [0, 1, 2, "…[+2 items]"]
    assert redactor.redact({f"k{i}": i for i in range(5)}) == {"k0": 0, "k1": 1, "k2": 2, "…": "[+2 keys]"}
    assert redactor.redact({"a": {"b": {"c": {"d": 1}}}}) == {"a": {"b": {"c": "[…]"}}}
    value = [["y" * 10] * 3] * 3
    full = json.dumps(value, separators=(",", ":"))
    assert Redactor(max_chars=50).attribute(value) == f"{full[:50]}…[+{len(full) - 50} chars]"


def test_non_json_values_become_safe_text() -> None:
    redactor = Redactor()
    assert redactor.redact(b"\x00\x01") == "[2 bytes]"
    assert redactor.redact(float("nan")) == "nan"
    assert redactor.redact(("a", 1)) == ["a", 1]
    assert redactor.redact(object()) != ""


def test_secrets_shorter_than_four_characters_are_not_masked() -> None:
    assert Redactor(secrets=("ab", "")).text("a cab ride") == "a cab ride"


def test_a_secret_containing_another_is_masked_whole() -> None:
    redactor = Redactor(secrets=("token-1234", "token-1234-extended"))
    assert redactor.text("use token-1234-extended now") == f"use {MASK} now"


_SECRET_ALPHABET = string.ascii_letters + string.digits


@given(
    secret=st.text(_SECRET_ALPHABET, min_size=8, max_size=40),
    before=st.text(max_size=300),
    after=st.text(max_size=300),
    key=st.text(max_size=20),
)
def test_a_planted_secret_never_survives_redaction(secret: str, before: str, after: str, key: str) -> None:
    redactor = Redactor(secrets=(secret,), max_chars=400, max_string_chars=120)
    text = redactor.attribute({key: [before + secret + after], "x": {"y": secret}})
    assert secret not in text


def test_record_payload_sets_the_redacted_json_on_recording_spans_only(spans: InMemorySpanExporter) -> None:
    redactor = Redactor(secrets=(SECRET,))
    with tracer.start_as_current_span("tools/call") as span:
        record_payload(span, ATTR_TOOL_CALL_ARGUMENTS, {"q": SECRET, "n": 1}, redactor)
    record_payload(trace.INVALID_SPAN, ATTR_TOOL_CALL_ARGUMENTS, {"q": SECRET}, redactor)
    (finished,) = spans.get_finished_spans()
    assert finished.attributes is not None
    assert json.loads(str(finished.attributes[ATTR_TOOL_CALL_ARGUMENTS])) == {"q": MASK, "n": 1}
