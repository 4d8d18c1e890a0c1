"""Signing identities: a per-workspace EC P-256 certificate made at `doppel init`, or the user's own.

The workspace's certificate is issued by a CA made for it alone, so a manifest it signs validates, but its
signer is on no trust list: `doppel verify` says so plainly ("self-signed, untrusted").
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from doppel.errors import DoppelError
from doppel.fsutil import write_bytes_atomic
from doppel.workspace.paths import inside


@dataclass(frozen=True)
class SigningIdentity:
    chain_pem: bytes
    """Leaf certificate followed by its issuer(s), PEM."""
    key_pem: bytes
    self_signed: bool


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "doppel workspace (self-signed)")])


def make_identity(workspace_id: str) -> SigningIdentity:
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(f"doppel workspace CA {workspace_id[:8]}")
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=3650))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder().subject_name(_name(f"doppel workspace {workspace_id[:8]}"))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    chain = leaf.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return SigningIdentity(chain, key_pem, True)


def ensure_workspace_identity(folder: Path, workspace_id: str) -> SigningIdentity:
    """The workspace's identity under folder/keys/, made on first use."""
    keys = folder / "keys"
    chain, key = keys / "signer-chain.pem", keys / "signer.key"
    if not (chain.is_file() and key.is_file()):
        keys.mkdir(exist_ok=True)
        identity = make_identity(workspace_id)
        write_bytes_atomic(chain, identity.chain_pem)
        write_bytes_atomic(key, identity.key_pem)
        os.chmod(key, 0o600)
    return SigningIdentity(chain.read_bytes(), key.read_bytes(), True)


def workspace_identity(folder: Path, workspace_id: str, *, create: bool = False) -> SigningIdentity:
    """The workspace's own identity from folder/keys/. When it is missing (keys/ deleted or never copied),
    this refuses and names the fixes instead of silently making a new identity, which would sign new exports
    with a key that earlier exports do not share; `create=True` (`--new-identity`) makes one on purpose."""
    keys = inside(folder, "keys", "signing key folder")
    chain, key = keys / "signer-chain.pem", keys / "signer.key"
    if not (chain.is_file() and key.is_file()):
        if not create:
            raise DoppelError("the workspace's signing identity (keys/signer-chain.pem, keys/signer.key) is "
                              "missing: restore keys/ from a backup, sign with your own --cert and --key, or "
                              "pass --new-identity to make a new self-signed one", keys)
        return ensure_workspace_identity(folder, workspace_id)
    try:
        return SigningIdentity(inside(folder, "keys/signer-chain.pem").read_bytes(),
                               inside(folder, "keys/signer.key").read_bytes(), True)
    except OSError as exc:
        raise DoppelError(f"cannot read the workspace's signing identity ({exc.strerror})", keys) from exc


def load_identity(cert: Path, key: Path) -> SigningIdentity:
    """The user's own certificate chain (PEM, leaf first) and private key (PEM)."""
    try:
        chain_pem, key_pem = Path(cert).read_bytes(), Path(key).read_bytes()
        x509.load_pem_x509_certificates(chain_pem)
        serialization.load_pem_private_key(key_pem, password=None)
    except (OSError, ValueError) as exc:
        raise DoppelError(f"cannot use this certificate or key ({exc})", cert) from exc
    return SigningIdentity(chain_pem, key_pem, False)
