"""A small identity provider for tests: signing keys, tokens, and its JWKS served on 127.0.0.1.

The JWKS endpoint is a real HTTP server in a thread. Tests swap the published key set, count
fetches, make the endpoint fail (an HTTP status, an oversized body, no answer at all) and sign
tokens the way a provider would, or the ways an attacker would.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, ClassVar

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

if TYPE_CHECKING:
    from collections.abc import Iterator

ISSUER = "https://idp.example/realms/main"
AUDIENCE = "https://mcp.example.com/mcp"


@dataclass(frozen=True)
class SigningKey:
    """A private key, its key id and the algorithm it signs with."""

    kid: str
    algorithm: str
    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey

    @classmethod
    def rsa(cls, kid: str, algorithm: str = "RS256") -> SigningKey:
        return cls(kid, algorithm, rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @classmethod
    def ec(cls, kid: str) -> SigningKey:
        return cls(kid, "ES256", ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def ed25519(cls, kid: str) -> SigningKey:
        return cls(kid, "EdDSA", ed25519.Ed25519PrivateKey.generate())

    def jwk(self) -> dict[str, Any]:
        """The public key as the provider publishes it."""
        public = self.private.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            data = RSAAlgorithm.to_jwk(public, as_dict=True)
        elif isinstance(public, ec.EllipticCurvePublicKey):
            data = ECAlgorithm.to_jwk(public, as_dict=True)
        else:
            data = OKPAlgorithm.to_jwk(public, as_dict=True)
        return {**data, "kid": self.kid, "use": "sig", "alg": self.algorithm}

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, claims: dict[str, Any], *, kid: str | None = None, algorithm: str | None = None) -> str:
        """A JWT of ``claims`` signed with this key, its header naming ``kid`` (default: this key's)."""
        return jwt.encode(
            claims,
            self.private,
            algorithm=algorithm or self.algorithm,
            headers={"kid": kid or self.kid},
        )


def claims(**overrides: Any) -> dict[str, Any]:
    """Valid access-token claims for ``AUDIENCE`` from ``ISSUER``, with ``overrides`` (None deletes)."""
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": [AUDIENCE, "account"],
        "sub": "user-1",
        "azp": "chatgpt",
        "exp": now + 300,
        "iat": now,
        "scope": "openid mcp",
        "jti": "token-1",
    }
    base.update(overrides)
    return {name: value for name, value in base.items() if value is not None}


def _segment(data: dict[str, Any] | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unsigned(claims: dict[str, Any], *, kid: str) -> str:
    """A token with ``alg: none`` and an empty signature."""
    return f"{_segment({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{_segment(claims)}."


def hmac_signed(claims: dict[str, Any], secret: bytes, *, kid: str) -> str:
    """A token signed with HS256 using ``secret`` (say, a public key's PEM), by hand as PyJWT refuses."""
    signing_input = f"{_segment({'alg': 'HS256', 'typ': 'JWT', 'kid': kid})}.{_segment(claims)}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_segment(signature)}"


@dataclass
class JwksEndpoint:
    """What the JWKS endpoint serves, and how often it was asked."""

    keys: list[dict[str, Any]]
    status: int = 200
    body: bytes | None = None
    hang: bool = False
    fetches: int = 0
    released: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def publish(self, *keys: SigningKey) -> None:
        with self.lock:
            self.keys = [key.jwk() for key in keys]

    def answer(self) -> tuple[int, bytes]:
        with self.lock:
            self.fetches += 1
            body = self.body if self.body is not None else json.dumps({"keys": self.keys}).encode()
            return self.status, body


class _Handler(BaseHTTPRequestHandler):
    endpoint: ClassVar[JwksEndpoint]

    def do_GET(self) -> None:
        status, body = self.endpoint.answer()
        if self.endpoint.hang:
            # Bounded: the test's teardown sets it, and the client gives up long before.
            self.endpoint.released.wait(timeout=30)
            return
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read the orchestrator's logs, not the fake provider's."""


@dataclass
class Provider:
    """A running JWKS endpoint at ``jwks_url``."""

    jwks_url: str
    endpoint: JwksEndpoint


def serve_jwks(*keys: SigningKey) -> Iterator[Provider]:
    """Serve ``keys`` as a JWKS on 127.0.0.1 until the generator is closed (a fixture's body)."""
    endpoint = JwksEndpoint(keys=[key.jwk() for key in keys])
    handler = type("Handler", (_Handler,), {"endpoint": endpoint})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="jwks", daemon=True)
    thread.start()
    try:
        yield Provider(f"http://127.0.0.1:{server.server_address[1]}/certs", endpoint)
    finally:
        endpoint.released.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
