"""JWT resource-server mode against a real JWKS endpoint on 127.0.0.1."""

from __future__ import annotations

import logging
import socket
import time
from typing import TYPE_CHECKING, Any

import anyio
import jwt
import pytest

from orchestrator.auth import GrantedAccessToken, JwtVerifier, principal_of
from orchestrator.config import JwtSpec
from tests.auth.identity_provider import (
    AUDIENCE,
    ISSUER,
    Provider,
    SigningKey,
    claims,
    hmac_signed,
    serve_jwks,
    unsigned,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.anyio

SCOPES = {"mcp": ("server:incidents",), "admin": ("*",), "tickets": ("server:tickets", "tool:analytics__report")}


@pytest.fixture(scope="module")
def rsa_key() -> SigningKey:
    return SigningKey.rsa("rsa-1")


@pytest.fixture(scope="module")
def ec_key() -> SigningKey:
    return SigningKey.ec("ec-1")


@pytest.fixture
def provider(rsa_key: SigningKey, ec_key: SigningKey) -> Iterator[Provider]:
    yield from serve_jwks(rsa_key, ec_key)


class Clock:
    """Monotonic seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def verifier_for(provider: Provider, clock: Clock, **spec: Any) -> JwtVerifier:
    fields: dict[str, Any] = {
        "issuer": ISSUER,
        "jwks_url": provider.jwks_url,
        "scopes": SCOPES,
        "grants_claim": "mcp_grants",
        **spec,
    }
    return JwtVerifier(JwtSpec.model_validate(fields), audience=AUDIENCE, jwks_timeout=5.0, clock=clock)


@pytest.fixture
def verifier(provider: Provider, clock: Clock) -> JwtVerifier:
    return verifier_for(provider, clock)


async def accepted(verifier: JwtVerifier, token: str) -> GrantedAccessToken:
    access = await verifier.verify_token(token)
    assert access is not None, "the token was refused"
    return access


async def test_a_valid_token_stands_for_its_client_and_subject_with_the_grant_of_its_scopes(
    verifier: JwtVerifier, rsa_key: SigningKey
) -> None:
    token_claims = claims(scope="openid mcp tickets")
    access = await accepted(verifier, rsa_key.sign(token_claims))
    assert (access.kind, access.client_id, access.subject) == ("jwt", "chatgpt", "user-1")
    assert access.scopes == ["openid", "mcp", "tickets"]
    assert access.grant == ("server:incidents", "server:tickets", "tool:analytics__report")
    assert access.resource == AUDIENCE
    assert access.claims == {"iss": ISSUER, "jti": "token-1"}
    # Leeway included: the SDK's backend compares expires_at with the clock without any.
    assert access.expires_at == token_claims["exp"] + 30
    principal = principal_of(access)
    assert (principal.issuer, principal.grant.covers_server("incidents")) == (ISSUER, True)
    assert not principal.grant.covers_server("analytics")


async def test_an_ec_token_with_okta_style_scp_list_and_client_id_claim_is_accepted(
    verifier: JwtVerifier, ec_key: SigningKey
) -> None:
    access = await accepted(verifier, ec_key.sign(claims(scope=None, scp=["admin"], client_id="svc", azp=None)))
    assert (access.client_id, access.scopes, access.grant) == ("svc", ["admin"], ("*",))


@pytest.mark.parametrize("algorithm", ["RS256", "PS256", "ES256", "EdDSA"])
async def test_each_default_algorithm_verifies_with_a_key_of_its_type(
    provider: Provider, verifier: JwtVerifier, algorithm: str
) -> None:
    key = {
        "RS256": lambda: SigningKey.rsa("k", "RS256"),
        "PS256": lambda: SigningKey.rsa("k", "PS256"),
        "ES256": lambda: SigningKey.ec("k"),
        "EdDSA": lambda: SigningKey.ed25519("k"),
    }[algorithm]()
    provider.endpoint.publish(key)
    access = await accepted(verifier, key.sign(claims()))
    assert access.subject == "user-1"


async def test_without_client_id_or_azp_the_subject_is_the_client(verifier: JwtVerifier, rsa_key: SigningKey) -> None:
    access = await accepted(verifier, rsa_key.sign(claims(azp=None, sub="service-account")))
    assert (access.client_id, access.subject) == ("service-account", "service-account")


async def test_a_token_naming_no_client_and_no_subject_is_refused(verifier: JwtVerifier, rsa_key: SigningKey) -> None:
    assert await verifier.verify_token(rsa_key.sign(claims(azp=None, sub=None))) is None


async def test_the_grants_claim_adds_its_well_formed_selectors_and_ignores_the_rest(
    verifier: JwtVerifier, rsa_key: SigningKey, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="orchestrator")
    selectors = ["tool:incidents__query", "server:tickets", "server:", "tool:rm -rf", 42]
    access = await accepted(verifier, rsa_key.sign(claims(scope="openid", mcp_grants=selectors)))
    assert access.grant == ("server:tickets", "tool:incidents__query")
    assert "2 malformed grant selectors ignored" in caplog.text


async def test_without_a_grants_claim_configured_the_claim_grants_nothing(
    provider: Provider, clock: Clock, rsa_key: SigningKey
) -> None:
    verifier = verifier_for(provider, clock, grants_claim=None)
    access = await accepted(verifier, rsa_key.sign(claims(scope="openid", mcp_grants=["*"])))
    assert access.grant == ()


@pytest.mark.parametrize(
    ("case", "overrides"),
    [
        ("wrong audience", {"aud": "https://other.example/mcp"}),
        ("no audience", {"aud": None}),
        ("wrong issuer", {"iss": "https://idp.example/realms/other"}),
        ("no issuer", {"iss": None}),
        ("expired beyond the leeway", {"exp": int(time.time()) - 120}),
        ("no expiry", {"exp": None}),
        ("not yet valid", {"nbf": int(time.time()) + 120}),
        ("issued in the future", {"iat": int(time.time()) + 120}),
    ],
)
async def test_a_token_with_bad_claims_is_refused(
    verifier: JwtVerifier, rsa_key: SigningKey, case: str, overrides: dict[str, Any]
) -> None:
    # The same token with good claims passes: what fails is the one claim.
    await accepted(verifier, rsa_key.sign(claims()))
    assert await verifier.verify_token(rsa_key.sign(claims(**overrides))) is None, case


async def test_times_within_the_leeway_are_accepted(verifier: JwtVerifier, rsa_key: SigningKey) -> None:
    now = int(time.time())
    await accepted(verifier, rsa_key.sign(claims(exp=now - 10, nbf=now + 10, iat=now + 10)))


async def test_an_unknown_kid_refetches_the_key_set_once_so_a_rotated_key_is_accepted(
    provider: Provider, verifier: JwtVerifier, clock: Clock, rsa_key: SigningKey
) -> None:
    await accepted(verifier, rsa_key.sign(claims()))
    assert provider.endpoint.fetches == 1
    rotated = SigningKey.rsa("rsa-2")
    provider.endpoint.publish(rsa_key, rotated)
    clock.now += 31  # past the cooldown that follows any fetch
    await accepted(verifier, rotated.sign(claims()))
    assert provider.endpoint.fetches == 2
    # Both keys are now known: no more fetches.
    await accepted(verifier, rsa_key.sign(claims()))
    await accepted(verifier, rotated.sign(claims()))
    assert provider.endpoint.fetches == 2


async def test_bogus_kids_within_the_cooldown_fetch_nothing_and_are_refused(
    provider: Provider, verifier: JwtVerifier, clock: Clock, rsa_key: SigningKey
) -> None:
    await accepted(verifier, rsa_key.sign(claims()))
    clock.now += 31
    assert await verifier.verify_token(rsa_key.sign(claims(), kid="bogus-1")) is None
    assert provider.endpoint.fetches == 2
    clock.now += 5
    for n in range(2, 20):
        assert await verifier.verify_token(rsa_key.sign(claims(), kid=f"bogus-{n}")) is None
    assert provider.endpoint.fetches == 2
    clock.now += 31
    assert await verifier.verify_token(rsa_key.sign(claims(), kid="bogus-20")) is None
    assert provider.endpoint.fetches == 3


async def test_concurrent_verifications_share_one_fetch(
    provider: Provider, verifier: JwtVerifier, rsa_key: SigningKey, ec_key: SigningKey
) -> None:
    results: list[GrantedAccessToken | None] = []

    async def verify(token: str) -> None:
        results.append(await verifier.verify_token(token))

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            for n in range(6):
                tg.start_soon(verify, (rsa_key if n % 2 else ec_key).sign(claims()))
    assert len(results) == 6
    assert all(result is not None for result in results)
    assert provider.endpoint.fetches == 1


async def test_an_old_key_set_is_fetched_again_so_a_withdrawn_key_stops_working(
    provider: Provider, verifier: JwtVerifier, clock: Clock, rsa_key: SigningKey, ec_key: SigningKey
) -> None:
    await accepted(verifier, rsa_key.sign(claims()))
    provider.endpoint.publish(ec_key)
    clock.now += 299
    await accepted(verifier, rsa_key.sign(claims()))
    assert provider.endpoint.fetches == 1
    clock.now += 2
    assert await verifier.verify_token(rsa_key.sign(claims())) is None
    assert provider.endpoint.fetches == 2


async def test_a_failed_refresh_keeps_the_keys_already_known(
    provider: Provider, verifier: JwtVerifier, clock: Clock, rsa_key: SigningKey
) -> None:
    await accepted(verifier, rsa_key.sign(claims()))
    provider.endpoint.status = 503
    clock.now += 301
    await accepted(verifier, rsa_key.sign(claims()))
    assert provider.endpoint.fetches == 2


async def test_an_unsigned_alg_none_token_is_refused_without_a_fetch(
    provider: Provider, verifier: JwtVerifier, rsa_key: SigningKey
) -> None:
    assert await verifier.verify_token(unsigned(claims(), kid=rsa_key.kid)) is None
    assert provider.endpoint.fetches == 0


async def test_hs256_signed_with_the_public_key_pem_as_secret_is_refused(
    provider: Provider, verifier: JwtVerifier, rsa_key: SigningKey
) -> None:
    forged = hmac_signed(claims(), rsa_key.public_pem(), kid=rsa_key.kid)
    assert await verifier.verify_token(forged) is None
    assert provider.endpoint.fetches == 0


async def test_an_algorithm_outside_the_configured_list_is_refused(
    provider: Provider, clock: Clock, rsa_key: SigningKey
) -> None:
    verifier = verifier_for(provider, clock, algorithms=["ES256"])
    assert await verifier.verify_token(rsa_key.sign(claims())) is None


async def test_a_key_of_the_wrong_type_for_the_tokens_algorithm_is_refused(
    provider: Provider, verifier: JwtVerifier, rsa_key: SigningKey, ec_key: SigningKey
) -> None:
    # The RSA key published without 'alg', and an ES256 token naming it: the key type decides.
    rsa_jwk = rsa_key.jwk()
    del rsa_jwk["alg"]
    provider.endpoint.keys = [rsa_jwk, ec_key.jwk()]
    assert await verifier.verify_token(ec_key.sign(claims(), kid=rsa_key.kid)) is None
    await accepted(verifier, rsa_key.sign(claims()))


async def test_a_key_published_for_encryption_is_not_used_to_verify(
    provider: Provider, verifier: JwtVerifier, rsa_key: SigningKey
) -> None:
    provider.endpoint.keys = [{**rsa_key.jwk(), "use": "enc"}]
    assert await verifier.verify_token(rsa_key.sign(claims())) is None


async def test_a_token_signed_by_another_key_under_a_known_kid_is_refused(
    verifier: JwtVerifier, rsa_key: SigningKey
) -> None:
    impostor = SigningKey.rsa(rsa_key.kid)
    assert await verifier.verify_token(impostor.sign(claims())) is None
    await accepted(verifier, rsa_key.sign(claims()))


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "a.b", "...", "eyJhbGciOiJSUzI1NiJ9.e30.", "Bearer x.y.z"])
async def test_a_malformed_token_is_refused(verifier: JwtVerifier, token: str) -> None:
    assert await verifier.verify_token(token) is None


async def test_a_token_without_kid_is_refused(verifier: JwtVerifier, rsa_key: SigningKey) -> None:
    token = jwt.encode(claims(), rsa_key.private, algorithm="RS256")
    assert await verifier.verify_token(token) is None


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("failure", ["refused", "status", "oversized", "not a key set", "no answer"])
async def test_an_unreachable_or_broken_jwks_refuses_the_token_and_logs_without_it(
    provider: Provider, clock: Clock, rsa_key: SigningKey, caplog: pytest.LogCaptureFixture, failure: str
) -> None:
    caplog.set_level(logging.DEBUG, logger="orchestrator")
    jwks_url = provider.jwks_url
    if failure == "refused":
        jwks_url = f"http://127.0.0.1:{_closed_port()}/certs"
    elif failure == "status":
        provider.endpoint.status = 500
    elif failure == "oversized":
        provider.endpoint.body = b'{"keys": [' + b" " * (1024 * 1024) + b"]}"
    elif failure == "not a key set":
        provider.endpoint.body = b"<html>login</html>"
    else:
        provider.endpoint.hang = True
    spec = JwtSpec(issuer=ISSUER, jwks_url=jwks_url, scopes=SCOPES)
    verifier = JwtVerifier(spec, audience=AUDIENCE, jwks_timeout=0.5, clock=clock)
    token = rsa_key.sign(claims())
    with anyio.fail_after(10):
        assert await verifier.verify_token(token) is None
    assert "JWKS fetch from" in caplog.text
    assert token not in caplog.text
    assert token.rsplit(".", 1)[1] not in caplog.text


async def test_no_rejection_logs_the_token(
    verifier: JwtVerifier, rsa_key: SigningKey, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="orchestrator")
    tokens = [
        rsa_key.sign(claims(aud="https://other.example")),
        rsa_key.sign(claims(), kid="bogus"),
        SigningKey.rsa(rsa_key.kid).sign(claims()),
        unsigned(claims(), kid=rsa_key.kid),
        hmac_signed(claims(), rsa_key.public_pem(), kid=rsa_key.kid),
        rsa_key.sign(claims(mcp_grants=["not a selector"])),
    ]
    for token in tokens:
        await verifier.verify_token(token)
    assert "JWT rejected" in caplog.text
    for token in tokens:
        for part in token.split("."):
            if len(part) > 8:
                assert part not in caplog.text


@pytest.mark.parametrize("url", ["http://", "http://[::1", "http://127.0.0.1:99999/certs"])
def test_an_unusable_jwks_url_is_refused_when_the_verifier_is_made(url: str) -> None:
    spec = JwtSpec(issuer=ISSUER, jwks_url=url)
    with pytest.raises(ValueError, match="JWKS URL"):
        JwtVerifier(spec, audience=AUDIENCE)
