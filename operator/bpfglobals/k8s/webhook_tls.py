"""The webhook's serving certificate: a CA of its own and a certificate for the webhook's
host names, issued by the operator (or mounted from cert-manager), renewed before it expires.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID = datetime.timedelta(days=365)
RENEW_BEFORE = datetime.timedelta(days=30)  # rotated this long before it expires


@dataclass(frozen=True)
class ServingCert:
    ca_pem: bytes  # what the apiserver trusts (the configuration's caBundle)
    cert_pem: bytes
    key_pem: bytes

    def not_after(self) -> datetime.datetime:
        return x509.load_pem_x509_certificate(self.cert_pem).not_valid_after_utc

    def due(self, now: datetime.datetime | None = None) -> bool:
        """Whether it is time to issue a new one."""
        now = now or datetime.datetime.now(datetime.UTC)
        return self.not_after() - now <= RENEW_BEFORE


def _subject_alt_names(hosts: list[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for h in hosts:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            out.append(x509.DNSName(h))
    return out


def issue(hosts: list[str], valid: datetime.timedelta = VALID) -> ServingCert:
    """A new CA and a serving certificate it signs for `hosts` (names or IP addresses)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bpfglobals-webhook-ca")])
    window = dict(not_valid_before=now - datetime.timedelta(minutes=5), not_valid_after=now + valid)
    ca = (
        x509.CertificateBuilder(issuer_name=ca_name, subject_name=ca_name, **window)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder(
            issuer_name=ca_name,
            subject_name=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]),
            **window,
        )
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(_subject_alt_names(hosts)), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return ServingCert(
        ca.public_bytes(pem),
        leaf.public_bytes(pem),
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )
