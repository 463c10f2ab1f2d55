"""A JSON Web Key Set served on localhost, JWTs as a CDS client (an EHR) signs them, and the
clinic setting that trusts that EHR."""

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from sqlalchemy.orm import Session

from app.audit import service as audit_service
from app.cds import auth as cds_auth
from tests.factories import NOW

ISSUER = "https://ehr.example.test"
BASE = "http://testserver/cds-services"


@dataclass
class Signer:
    """An EHR's signing key and the JWKS URL that publishes its public half."""

    key: ec.EllipticCurvePrivateKey
    kid: str
    jwks_url: str

    def token(self, service: str, **overrides: Any) -> str:
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": f"{BASE}/{service}",
            "iat": int(NOW.timestamp()),
            "exp": int(NOW.timestamp()) + 300,
            "jti": str(uuid.uuid4()),
        } | overrides
        return jwt.encode(
            {k: v for k, v in claims.items() if v is not None},
            self.key,
            algorithm="ES384",
            headers={"kid": self.kid},
        )

    def headers(self, service: str, **overrides: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(service, **overrides)}"}


@contextmanager
def jwks_server() -> Iterator[Signer]:
    """Serve one EC P-384 public key as a JWKS on 127.0.0.1 (an ephemeral port)."""
    key = ec.generate_private_key(ec.SECP384R1())
    jwk = json.loads(ECAlgorithm.to_jwk(key.public_key())) | {
        "kid": "ehr-1",
        "alg": "ES384",
        "use": "sig",
    }
    body = json.dumps({"keys": [jwk]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Signer(key, "ehr-1", f"http://127.0.0.1:{server.server_address[1]}/jwks.json")
    finally:
        server.shutdown()
        server.server_close()


def trust(session: Session, clinic_id: Any, ehr: Signer) -> None:
    """Configure ``ehr`` as the CDS client of the clinic (its issuer and JWKS URL)."""
    cds_auth.configure(session, clinic_id=clinic_id, issuer=ISSUER, jwks_url=ehr.jwks_url,
                       actor=audit_service.Actor.cli(), now=NOW)  # fmt: skip
    session.flush()
