"""Credentials of a secure Flower deployment: a CA, the SuperLink's TLS certificate, SuperNode keys.

TLS: the SuperLink presents a certificate signed by our own CA; every SuperNode and every `flwr`
command verifies it against `ca.crt`. A TLS client checks that the address it dialled is in the
certificate's subjectAltName, so the certificate must name every address the SuperLink is reached by
(127.0.0.1 and localhost always; a lab machine's IP or host name via `hosts`).

Node authentication: each SuperNode signs its requests with its own ECDSA P-384 key (OpenSSH
format, as `flower-supernode --auth-supernode-private-key` reads it); the SuperLink admits only
nodes whose public key (`<key>.pub`, as `flwr supernode register` reads it) was registered.

Written with the `cryptography` package, so no openssl or ssh-keygen binary is needed.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from fedfer.io import atomic_write_bytes

LOOPBACK_HOSTS = ("127.0.0.1", "localhost")
VALID_DAYS = 365
CURVE = ec.SECP384R1()  # P-384: what Flower's node authentication expects


@dataclass(frozen=True)
class Credentials:
    """Paths of one deployment's credentials, all inside `directory`."""

    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def server_cert(self) -> Path:
        return self.directory / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.directory / "server.key"

    def node_key(self, index: int) -> Path:
        """SuperNode `index`'s private key; its public key is the same path plus `.pub`."""
        return self.directory / "supernodes" / f"node-{index}.key"

    def node_public_key(self, index: int) -> Path:
        return self.node_key(index).with_name(f"node-{index}.key.pub")


def make_credentials(directory: Path, num_nodes: int, hosts: Sequence[str] = ()) -> Credentials:
    """CA, SuperLink certificate for `hosts` (plus loopback) and `num_nodes` SuperNode key pairs.

    Private keys are written readable by their owner only. Raises ValueError for a host that is
    neither an IP address nor a DNS name.
    """
    if num_nodes < 1:
        raise ValueError(f"need at least one SuperNode key, got num_nodes={num_nodes}")
    credentials = Credentials(Path(directory))
    ca_key = ec.generate_private_key(CURVE)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fedfer deployment CA")])
    ca_cert = _certificate(ca_name, ca_key.public_key(), ca_name, ca_key, is_ca=True, hosts=())
    server_key = ec.generate_private_key(CURVE)
    server_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fedfer SuperLink")])
    all_hosts = list(dict.fromkeys([*LOOPBACK_HOSTS, *hosts]))
    server_cert = _certificate(server_name, server_key.public_key(), ca_name, ca_key, is_ca=False, hosts=all_hosts)
    _write(credentials.ca_cert, ca_cert.public_bytes(serialization.Encoding.PEM), 0o644)
    _write(credentials.server_cert, server_cert.public_bytes(serialization.Encoding.PEM), 0o644)
    _write(
        credentials.server_key,
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
        0o600,
    )
    for index in range(num_nodes):
        write_node_key(credentials.node_key(index))
    return credentials


def write_node_key(path: Path) -> Path:
    """An ECDSA P-384 key pair in OpenSSH format: private key at `path`, public key at `path`.pub."""
    key = ec.generate_private_key(CURVE)
    _write(
        path,
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        ),
        0o600,
    )
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    _write(path.with_name(path.name + ".pub"), public + b"\n", 0o644)
    return path


def _write(path: Path, data: bytes, mode: int) -> None:
    """Atomic write, then `mode`: private keys for their owner only, certificates and public keys for all."""
    atomic_write_bytes(path, data)
    path.chmod(mode)


def _certificate(
    subject: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    is_ca: bool,
    hosts: Sequence[str],
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))  # tolerate small clock skew between lab machines
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
    )
    if hosts:
        builder = builder.add_extension(x509.SubjectAlternativeName([_san(h) for h in hosts]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        pass
    if not host or any(c.isspace() or c in "/:@" for c in host):
        raise ValueError(
            f"--host {host!r} is neither an IP address nor a DNS name; "
            "give the address SuperNodes dial, e.g. 10.0.0.5 or superlink.lab"
        )
    return x509.DNSName(host)
