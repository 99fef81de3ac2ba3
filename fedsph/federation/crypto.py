"""RSA keys for actors: generate, load (cached), sign and verify. Pure functions over bytes."""

from __future__ import annotations

from functools import lru_cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def generate_rsa_keypair(bits: int = 2048) -> tuple[str, str]:
    """Return (private PEM, public PEM) for a new RSA key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    return private_pem, public_pem


@lru_cache(maxsize=1024)
def load_private_key(pem: str) -> rsa.RSAPrivateKey:
    # Parsing a PEM costs about as much as a signature; a node signs with few keys, so cache them.
    return serialization.load_pem_private_key(pem.encode(), password=None)


@lru_cache(maxsize=4096)
def load_public_key(pem: str):
    return serialization.load_pem_public_key(pem.encode())


def rsa_sign(private_pem: str, data: bytes) -> bytes:
    return load_private_key(private_pem).sign(data, padding.PKCS1v15(), hashes.SHA256())


def rsa_verify(public_pem: str, signature: bytes, data: bytes) -> bool:
    """True when `signature` is a valid RSASSA-PKCS1-v1_5 SHA-256 signature of `data`."""
    try:
        key = load_public_key(public_pem)
    except ValueError:
        return False
    if not isinstance(key, rsa.RSAPublicKey):
        return False
    try:
        key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True
