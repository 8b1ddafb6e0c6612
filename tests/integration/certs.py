"""Test certificates, made with python3-cryptography (EC P-256: fast): a CA, server certificates
for 127.0.0.1/localhost, client certificates with a CN and SANs (DNS, URI), and expired ones."""

import datetime
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
import ipaddress


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _key():
    return ec.generate_private_key(ec.SECP256R1())


class Ca:
    def __init__(self, cn="keyfence test CA"):
        self.key = _key()
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn))
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(days=1))
                     .not_valid_after(now + datetime.timedelta(days=30))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
                     .sign(self.key, hashes.SHA256()))

    def issue(self, cn, dns=(), uris=(), ips=(), server=False, expired=False, client=None):
        """client: also (or, for server=False, only) for client authentication; a Redis node
        needs both, since its cluster bus and replication connect with the same pair."""
        key = _key()
        now = datetime.datetime.now(datetime.timezone.utc)
        start, end = ((now - datetime.timedelta(days=10), now - datetime.timedelta(days=1))
                      if expired else (now - datetime.timedelta(days=1),
                                       now + datetime.timedelta(days=30)))
        sans = [x509.DNSName(d) for d in dns] + [x509.UniformResourceIdentifier(u) for u in uris]
        sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        b = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(self.cert.subject)
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(start).not_valid_after(end)
             .add_extension(x509.ExtendedKeyUsage(
                 ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) +
                 ([ExtendedKeyUsageOID.CLIENT_AUTH] if (client or not server) else [])), False))
        if sans:
            b = b.add_extension(x509.SubjectAlternativeName(sans), False)
        return b.sign(self.key, hashes.SHA256()), key

    def write(self, d, name="ca"):
        path = os.path.join(d, name + ".crt")
        with open(path, "wb") as f:
            f.write(self.cert.public_bytes(serialization.Encoding.PEM))
        return path


def write_pair(d, name, cert, key):
    """(cert path, key path) under d."""
    cp, kp = os.path.join(d, name + ".crt"), os.path.join(d, name + ".key")
    with open(cp, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(kp, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.TraditionalOpenSSL,
                                  serialization.NoEncryption()))
    return cp, kp
