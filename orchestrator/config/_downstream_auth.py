"""Configuration of how the orchestrator signs in to a remote (HTTP) downstream server with OAuth.

``auth: oauth`` on an HTTP server entry, or the long form
``auth: {type: oauth, scopes: [...], client_id: ..., client_metadata_url: ...}``, becomes one
``DownstreamOAuthSpec``. ``orchestrator.trust`` does the work (discovery, registration, tokens);
here the settings are only checked for shape.

Cursor writes an ``auth`` mapping of its own (its OAuth client settings, without ``type``) into
server entries; such a mapping is not this one and stays ignored (see ``is_own_auth``).
"""

from __future__ import annotations

from typing import Literal, cast
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["DownstreamOAuthSpec", "is_own_auth"]


def is_own_auth(value: object) -> bool:
    """Whether an entry's ``auth`` value is this project's (a string, or a mapping with ``type``).

    Cursor's ``auth`` mapping has no ``type``; it steers only Cursor, and is ignored here.
    """
    return isinstance(value, str) or (isinstance(value, dict) and "type" in cast("dict[str, object]", value))


class DownstreamOAuthSpec(BaseModel):
    """Sign in to this server with OAuth 2.1 (authorization code + PKCE); ``orchestrator login KEY`` does it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["oauth"] = Field(description="The only kind of downstream sign-in: oauth.")
    scopes: tuple[str, ...] = Field(
        default=(),
        description="Scopes to ask for; default: what the server's metadata or challenge names.",
    )
    client_id: str | None = Field(
        default=None,
        min_length=1,
        description="A client id registered with the authorization server beforehand (no registration then).",
    )
    client_metadata_url: str | None = Field(
        default=None,
        description=(
            "An https URL of a Client ID Metadata Document describing this orchestrator, used as its "
            "client id where the authorization server supports that (else dynamic registration)."
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, value: object) -> object:
        # `auth: oauth` is the short form of `auth: {type: oauth}`.
        if isinstance(value, str):
            if value != "oauth":
                raise ValueError(f"{value!r} is not a kind of sign-in; the only one is 'oauth'")
            return {"type": "oauth"}
        return value

    @field_validator("scopes")
    @classmethod
    def _scope_tokens(cls, scopes: tuple[str, ...]) -> tuple[str, ...]:
        for scope in scopes:
            if not scope or any(c.isspace() or c in '"\\' for c in scope):
                raise ValueError(f"{scope!r} is not a scope (one word each, no spaces or quotes)")
        return scopes

    @field_validator("client_metadata_url")
    @classmethod
    def _metadata_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname or parts.path in ("", "/"):
            raise ValueError("must be an https URL with a path, e.g. https://example.com/oauth/client.json")
        return url

    @model_validator(mode="after")
    def _one_client_identity(self) -> DownstreamOAuthSpec:
        if self.client_id is not None and self.client_metadata_url is not None:
            raise ValueError("client_id and client_metadata_url: give one (the document's URL is the client id)")
        return self
