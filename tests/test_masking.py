"""The one secret masker: one mask string, longest secret first, short values left alone."""

from __future__ import annotations

from orchestrator import tracing
from orchestrator._masking import MASK, SecretMasker


def test_a_secret_containing_another_is_masked_whole_whatever_the_order_given() -> None:
    masker = SecretMasker(["token-1234", "token-1234-extended"])

    assert masker.mask("use token-1234-extended, or token-1234") == f"use {MASK}, or {MASK}"


def test_values_shorter_than_four_characters_are_left_alone_unless_asked() -> None:
    text = "a cab ride"

    assert SecretMasker(["cab", ""]).mask(text) == text
    assert SecretMasker(["cab", ""], min_length=1).mask(text) == f"a {MASK} ride"


def test_a_masker_with_nothing_to_mask_is_false_and_changes_nothing() -> None:
    masker = SecretMasker(["ab"])

    assert not masker
    assert masker.mask("ab ab") == "ab ab"
    assert SecretMasker(["abcd"])


def test_spans_and_everything_else_use_the_same_mask() -> None:
    assert tracing.MASK is MASK
    assert tracing.Redactor(secrets=("s3cr3t-value",)).text("key s3cr3t-value") == f"key {MASK}"
