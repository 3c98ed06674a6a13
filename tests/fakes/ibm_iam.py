"""IBM Cloud IAM as both IBM fakes (Direct Access, Qiskit Runtime) serve it.

``POST .../identity/token`` with form ``grant_type=urn:ibm:params:oauth:grant-type:apikey``
and ``apikey`` answers a JWT access token with ``iat`` / ``exp`` (ibm-cloud-sdk-core
decodes both); a wrong key gets IAM's 400 ``BXNIM0415E``, a wrong grant type 400
``BXNIM0109E``: the bodies of ``tests/conformance/ibm/iam/``. ``configure(revoke_tokens=True)``
makes every token issued so far invalid (an expiry before its time).
"""

from __future__ import annotations

import time
import uuid
from typing import Any
from urllib.parse import parse_qsl

import jwt

from . import conformance
from .server import FakeServer

_JWT_KEY = "fake-iam-signing-key-for-tests-only-0123456789"
GRANT_TYPE = "urn:ibm:params:oauth:grant-type:apikey"


class FakeIbmService(FakeServer):
    """A fake IBM service with its IAM endpoint: issues, checks and revokes tokens."""

    def __init__(self, api_key: str, **config: Any) -> None:
        super().__init__(api_key=api_key, token_ttl=3600, **config)
        self.valid_tokens: set[str] = set()
        self.issued: list[str] = []  # every token ever issued (to check none is logged)

    def configure(self, **changes: Any) -> None:
        """As :meth:`FakeServer.configure`; ``revoke_tokens=True`` acts at once."""
        with self.lock:
            if changes.pop("revoke_tokens", False):
                self.valid_tokens.clear()
        super().configure(**changes)

    def issue_token(self, body: bytes) -> tuple[int, Any]:
        """Answer an IAM token request (form-encoded ``body``)."""
        form = dict(parse_qsl(body.decode()))
        if form.get("grant_type") != GRANT_TYPE:
            refusal = conformance.fixture("iam/error_grant_type")
            return refusal["status"], refusal["body"]
        if form.get("apikey") != self.config["api_key"]:
            refusal = conformance.fixture("iam/error_apikey_not_found")
            return refusal["status"], refusal["body"]
        now = int(time.time())
        ttl = int(self.config["token_ttl"])
        token = jwt.encode(
            {"iat": now, "exp": now + ttl, "jti": uuid.uuid4().hex}, _JWT_KEY, algorithm="HS256"
        )
        with self.lock:
            self.valid_tokens.add(token)
            self.issued.append(token)
        return 200, {
            "access_token": token,
            "refresh_token": "not-used",
            "token_type": "Bearer",
            "expires_in": ttl,
            "expiration": now + ttl,
        }

    def bearer_valid(self, headers: Any) -> bool:
        """Whether the request carries a token this IAM issued and has not revoked."""
        auth = headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        with self.lock:
            return token in self.valid_tokens
