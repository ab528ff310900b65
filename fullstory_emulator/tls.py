"""HTTPS for clients that only speak HTTPS: a local certificate authority made with trustme,
kept in the data dir so that clients told to trust it keep trusting it across restarts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .netloc import WILDCARDS

NAMES = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class TlsFiles:
    ca: Path  # what clients must trust
    certificate: Path  # the server's certificate chain
    key: Path


def ensure_certificates(directory: Path, host: str) -> TlsFiles:
    """The CA and a server certificate in `directory`, made on first use."""
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    if all(path.exists() for path in (files.ca, files.certificate, files.key)):
        return files
    import trustme  # with cryptography, a third of a cold start; only TLS pays for it

    ca = trustme.CA(organization_name="fullstory-emulator local CA")
    names = [*NAMES, *([host] if host not in NAMES and host not in WILDCARDS else [])]
    server = ca.issue_cert(*names)
    ca.cert_pem.write_to_path(str(files.ca))
    server.private_key_pem.write_to_path(str(files.key))
    files.certificate.write_bytes(b"".join(blob.bytes() for blob in server.cert_chain_pems))
    files.key.chmod(0o600)
    return files


def trust_instructions(ca: Path) -> str:
    return (
        f"  TLS CA:         {ca}\n"
        f"    trust it: SSL_CERT_FILE={ca} (Python, curl), REQUESTS_CA_BUNDLE={ca}\n"
        f"    (requests), NODE_EXTRA_CA_CERTS={ca} (Node.js), or curl --cacert {ca}"
    )
