"""Static bearer tokens: shared ones grant everything, named ones their own grant; and the chain."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from orchestrator.auth import (
    EVERYTHING,
    Grant,
    GrantedAccessToken,
    JwtVerifier,
    StaticTokenVerifier,
    VerifierChain,
    principal_of,
)
from orchestrator.config import AuthSpec, JwtSpec
from tests.auth.identity_provider import AUDIENCE, ISSUER, Provider, SigningKey, claims, serve_jwks

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.anyio

RESOURCE = "https://mcp.example.com/mcp"


def auth_spec() -> AuthSpec:
    return AuthSpec.model_validate(
        {
            "tokens_env": "SHARED",
            "tokens": {
                "ci": {"env": "CI_TOKEN", "grant": ["server:incidents", "tool:tickets__open"]},
                "ops": {"env": "OPS_TOKEN"},
                "unset": {"env": "NOT_SET"},
            },
        }
    )


ENV = {"SHARED": " alpha , beta ,", "CI_TOKEN": "ci-secret", "OPS_TOKEN": "ops-secret"}


@pytest.fixture
def verifier() -> StaticTokenVerifier:
    return StaticTokenVerifier.from_config(auth_spec(), ENV, resource=RESOURCE)


async def test_a_shared_token_grants_everything(verifier: StaticTokenVerifier) -> None:
    for token in ("alpha", "beta"):
        access = await verifier.verify_token(token)
        assert isinstance(access, GrantedAccessToken)
        assert (access.kind, access.client_id, access.grant) == ("token", "token", ("*",))
        assert (access.expires_at, access.resource, access.scopes, access.token) == (None, RESOURCE, [], token)
        assert principal_of(access).grant == EVERYTHING


async def test_a_named_token_carries_its_own_grant(verifier: StaticTokenVerifier) -> None:
    access = await verifier.verify_token("ci-secret")
    assert access is not None
    assert (access.client_id, access.grant) == ("token:ci", ("server:incidents", "tool:tickets__open"))
    principal = principal_of(access)
    assert principal.grant.covers_tool("tickets__open", "tickets")
    assert not principal.grant.covers_tool("tickets__close", "tickets")
    ops = await verifier.verify_token("ops-secret")
    assert ops is not None
    assert (ops.client_id, ops.grant) == ("token:ops", ("*",))


@pytest.mark.parametrize("token", ["", "alph", "alpha ", "ALPHA", "ci-secret-", "gamma", "alpha,beta"])
async def test_any_other_token_is_refused(verifier: StaticTokenVerifier, token: str) -> None:
    assert await verifier.verify_token(token) is None


async def test_the_required_scopes_given_are_the_tokens_scopes() -> None:
    verifier = StaticTokenVerifier(["alpha"], {}, resource=None, scopes=["mcp"])
    access = await verifier.verify_token("alpha")
    assert access is not None
    assert (access.scopes, access.resource) == (["mcp"], None)


async def test_with_no_tokens_set_nothing_is_accepted() -> None:
    verifier = StaticTokenVerifier.from_config(auth_spec(), {}, resource=RESOURCE)
    assert not verifier.configured
    assert await verifier.verify_token("") is None
    assert await verifier.verify_token("alpha") is None


def test_one_value_configured_twice_is_refused_without_showing_it() -> None:
    with pytest.raises(ValueError, match=r"shared token 1 and token 'ci' have the same value") as raised:
        StaticTokenVerifier(["twice"], {"ci": ("twice", Grant.of(["server:a"]))}, resource=None)
    assert "twice" not in str(raised.value)


def test_an_empty_token_is_refused() -> None:
    with pytest.raises(ValueError, match="token 'ci' is empty"):
        StaticTokenVerifier([], {"ci": ("", EVERYTHING)}, resource=None)


@pytest.fixture
def signer() -> SigningKey:
    return SigningKey.ec("ec-1")


@pytest.fixture
def provider(signer: SigningKey) -> Iterator[Provider]:
    yield from serve_jwks(signer)


async def test_the_chain_asks_static_tokens_first_then_the_provider(provider: Provider, signer: SigningKey) -> None:
    jwt_verifier = JwtVerifier(JwtSpec(issuer=ISSUER, jwks_url=provider.jwks_url), audience=AUDIENCE)
    chain = VerifierChain(StaticTokenVerifier(["alpha"], {}, resource=AUDIENCE), jwt_verifier)
    static = await chain.verify_token("alpha")
    assert static is not None
    assert static.client_id == "token"
    assert provider.endpoint.fetches == 0  # a static token never costs a key fetch
    signed = await chain.verify_token(signer.sign(claims()))
    assert signed is not None
    assert (signed.client_id, signed.subject) == ("chatgpt", "user-1")
    assert await chain.verify_token("gamma") is None
