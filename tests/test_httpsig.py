"""fedsph.federation.httpsig as pure functions: signing byte-for-byte, and every reason verification refuses."""

import base64
from datetime import UTC, datetime, timedelta

import pytest

from fedsph.errors import Unauthorized
from fedsph.federation.crypto import generate_rsa_keypair, rsa_sign
from fedsph.federation.httpsig import (
    parse_signature_header,
    sha256_digest,
    sign_request,
    verify_request,
)

# A throw-away key pair made once with fedsph.federation.crypto.generate_rsa_keypair, committed so that the
# known-good vectors below stay fixed (RSA PKCS#1 v1.5 signatures are deterministic).
TEST_PRIVATE_PEM = """-----BEGIN PRIVATE KEY-----
MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQDk3cay1RHcERWA
rV8F821iDuQGy/D2oZCL9iRI/EA5PLXtqqnDOr2Cte5TFIvnd5taW2rapi5Y8ohF
3AMaO8AuuJ9ptqAO5nIHyK2SpniFN5NXdCJmhyj/ZQNB1u2xIBFuv2XpNNbeJd3x
xVk/EcrtoM/mWvOKgFGziDFZEmQrkKK6EyQbDfXGN2EXvLZbMPlspVLpJ6Lhxa7X
csW+MpqwlBxJstpheL7V+h6VmA7X2iLA0LKOLIZltUdeFiLm2Be0Fuyhfo45mE+I
8wobxmCCV624GXl8sDH01zHY01vcqnMlfmrZikyudCsdwq0g2qPYsYkAGNjYolcI
xfbJD9IVAgMBAAECggEAZ5ftJyhjt6FyArc3AkoP0mlcFKl+bhxugbPN881eQqo0
zRnJUsnFWyN/d1KfCwwsISetA8BhzTgmr7xpGRg/osZFvgOAio4LwnM3AeDhP6eK
xXSXV6JJT+UIpuYi2+Bgk6kF95vHwHESd6u0/GPQ32PBhwrXHvN7R9DXSXKWLdMk
S12ywizGgpogq80GtLN0JGCv2LBqKhatzw6rLBrswlIz5DQb95ihHCKaqbRbCVdk
QeJUoJi7d/cdFUawmhM9UKO9BBhbqjO67B6hNqqWqCT781Uqe5b3a/pMpTgEPUj0
btrs8wM9wT4yIO+9bwt5gPMBw7HkGvX1w2wbqPW0twKBgQD8Yj0eLLx3MSjv/L9H
PPX8az1gPXFRQGv0u6++xOjCrVlGOv8Xmtghb30RMBubE5X9gesvEZDHYZSAGQXA
KNRdY9tZuvIMFxo5FohwEkcCuXHXP9+2Hgma8+XTK8ypa0HrhIiz/ZyD4f63SLwW
LZqBI5oHi33vmcOuAq4YTD94jwKBgQDoJUYaKQ6ckDoRUJV7s+exxIUIa0VYywMt
3fw7hL7ymEATs4K4ZHUxJ2gjv9cnc4WM24cGfiMXfNHsO3uGufW8Rf9MHrrwYEvK
uKrOC+7PMjcXW+figiDjORLh/MgipmKgBuaslfcOCTnsxzto4+hPKijtcGElCM/W
KK2utk+1GwKBgFcyzfEF/duklYNNLP0897RNjPgaYnNzMZlt20urFsxkPisAqTAL
pM7wiSKOH4uV2cWrxIkPpZjtgvQ7MPxyXuUhYiD/cS9yL/I3cc5e0kADuGxpOi7e
8+yghfBO+rgyQaVQtjaR0ijSxUGoFKwI94/UsBwZOtq0oqIVdPcaKPfLAoGAQsjm
YARLxdLgQbbzKkFZeJTWyNNDggX1hi6EsALChDw0wvYztyR/aoKxvQcluJ3NX/aP
49hJ9Cneop2CLgI1pdJlXdrBYQHzDAEQcnKQY19I5hl0nn9dQsFao1T7pqxDV1Jk
7mW+S3VwCqROfSCD5rJ0T8qyx9q/IBdX0Bl22N0CgYAHR3Aa4n4QHlN8Gj7j13Ub
EPkS0oH5ueZVXjdYgoVE5xFJ1TYLIAXVA3sLUc9j/J62cNqPV9vFk+OIWI6LZwIx
IQCWu13BCtylnjAovfa0W0vNEO9b/NIoeV+u/tOjXvq0hfFfxbkt54qSWtnKZThj
gMYl53JYQjVHD5zDj7ckdA==
-----END PRIVATE KEY-----
"""
TEST_PUBLIC_PEM = """-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA5N3GstUR3BEVgK1fBfNt
Yg7kBsvw9qGQi/YkSPxAOTy17aqpwzq9grXuUxSL53ebWltq2qYuWPKIRdwDGjvA
LrifabagDuZyB8itkqZ4hTeTV3QiZoco/2UDQdbtsSARbr9l6TTW3iXd8cVZPxHK
7aDP5lrzioBRs4gxWRJkK5CiuhMkGw31xjdhF7y2WzD5bKVS6Sei4cWu13LFvjKa
sJQcSbLaYXi+1foelZgO19oiwNCyjiyGZbVHXhYi5tgXtBbsoX6OOZhPiPMKG8Zg
gletuBl5fLAx9Ncx2NNb3KpzJX5q2YpMrnQrHcKtINqj2LGJABjY2KJXCMX2yQ/S
FQIDAQAB
-----END PUBLIC KEY-----
"""
KEY_ID = "https://local.example/actors/coop#main-key"
NOW = datetime(2023, 11, 7, 10, 0, 0, tzinfo=UTC)
DATE = "Tue, 07 Nov 2023 10:00:00 GMT"
INBOX = "https://remote.example/users/alice/inbox"
BODY = b'{"type":"Follow"}'

# Signing string "(request-target): post /users/alice/inbox\nhost: remote.example\ndate: DATE\n
# digest: SHA-256=…\ncontent-type: application/activity+json", signed with the key above by
# `cryptography` directly (not through fedsph), so the vector does not merely echo our code.
POST_DIGEST = "SHA-256=GYwYnH3BiO6aICFt0ThC5bUIJ4byvqdpWtR8m5fNkww="
POST_SIGNATURE = (
    "tfQW/ZQnRLjbYHUi8PiGXzr3ilsWW3woUXr8ofwa59Hrn1E2pI7KtaFampW2Ahh/wWAUcRieT9iKSyx0RjHEruU3MAyN"
    "qsvHB6s5Ea8tONnnwx2CR+P/BHyEVvp4abJW9fb+zNGNvWuZhCHS8MJ7YvBBUZOpb/IB7OOQ3uEw0CexjBCVHbdg85h7"
    "8DYG0TauK0Gx0A4wSpfn45xpps0ljLBhhGv6Whg/tWw1BSdgWTGU2lr+MuM5d4g6DEWkcf2SW4mLCNXlKQ/Uu5+zN301"
    "ZORr91gwE1MYR+Zna+mlA9e6RC/tiB7vEMnGw5bgeaWY9Yy4Yi7Twmsrob4UDJ4+LQ=="
)
# A GET as Mastodon signs it: "host date (request-target)", (request-target) last, with a query.
GET_SIGNATURE = (
    "2lJjL5pDDsVFbSjEraC+qQZ2Asc1Gcub+ofkeDq39T33NNavI+Ksn9d3/RqGWE9t4ZxH3+1cxgGC0TveEzWqPte6a+5B"
    "viRXELCy46cRPG15eA5Ba6hqHbQFRfGZd8NyuF+NReFyurFeTv3YGiMSMvu4G8Rzm4JWNJVSwASFL9ZyjBonlEJPZqU5"
    "jrHjt9zd5iq1Ly/GXJH6RtraUNsie5Cyssf2TCMDeUqj+8Y9VwvsjLPe5ZbgRkt4uwG0YuYfH0NCb98/C8i03VFx3UdI"
    "T5nwtx4At2t0oW4+Sp8WhHO4Lh3Idjeyjkgcb7W0Gf5pN/BBId2oBg6u5opuy5pTiw=="
)


def lower(headers: dict) -> dict:
    return {k.lower(): v for k, v in headers.items()}


def verify(headers: dict, method="POST", path="/users/alice/inbox", query="", body=BODY,
           pem=TEST_PUBLIC_PEM, now=NOW):
    headers = lower(headers)
    params = parse_signature_header(headers["signature"])
    verify_request(params, pem, method, path, query, headers, body, now)


def custom_signed(names: list[str], headers: dict, target: str) -> dict:
    """Sign `headers` (plus `(request-target)` = target) in exactly the order of `names`."""
    values = {**lower(headers), "(request-target)": target}
    text = "\n".join(f"{name}: {values[name]}" for name in names)
    signature = base64.b64encode(rsa_sign(TEST_PRIVATE_PEM, text.encode())).decode()
    return {**headers, "Signature": f'keyId="{KEY_ID}",algorithm="rsa-sha256",'
                                    f'headers="{" ".join(names)}",signature="{signature}"'}


def signed_post(body=BODY, now=NOW) -> dict:
    return sign_request("POST", INBOX, KEY_ID, TEST_PRIVATE_PEM, body=body, now=now)


def test_known_vector_is_signed_byte_for_byte():
    assert signed_post() == {
        "Host": "remote.example",
        "Date": DATE,
        "Digest": POST_DIGEST,
        "Content-Type": "application/activity+json",
        "Signature": f'keyId="{KEY_ID}",algorithm="rsa-sha256",'
                     f'headers="(request-target) host date digest content-type",'
                     f'signature="{POST_SIGNATURE}"',
    }


def test_known_vector_verifies():
    verify({"Host": "remote.example", "Date": DATE, "Digest": POST_DIGEST,
            "Content-Type": "application/activity+json",
            "Signature": f'keyId="{KEY_ID}",algorithm="rsa-sha256",headers="(request-target) '
                         f'host date digest content-type",signature="{POST_SIGNATURE}"'})


def test_mastodon_order_with_request_target_last_verifies():
    verify({"Host": "remote.example", "Date": DATE,
            "Signature": f'keyId="{KEY_ID}",algorithm="rsa-sha256",'
                         f'headers="host date (request-target)",signature="{GET_SIGNATURE}"'},
           method="GET", path="/users/alice", query="page=1", body=None)


def test_get_round_trip():
    headers = sign_request("GET", "https://remote.example/users/alice", KEY_ID, TEST_PRIVATE_PEM, now=NOW)
    assert "Digest" not in headers
    verify(headers, method="GET", path="/users/alice", body=None)


def test_post_round_trip_at_real_time():
    verify(sign_request("POST", INBOX, KEY_ID, TEST_PRIVATE_PEM, body=BODY), now=None)


def test_request_target_includes_query_string():
    headers = sign_request("GET", "https://remote.example/users/alice?page=2&x=y", KEY_ID,
                           TEST_PRIVATE_PEM, now=NOW)
    verify(headers, method="GET", path="/users/alice", query="page=2&x=y", body=None)
    with pytest.raises(Unauthorized, match="does not verify"):
        verify(headers, method="GET", path="/users/alice", query="page=3", body=None)


def test_signature_without_query_string_is_accepted_too():
    # Some servers sign the path only; verify_request tries both forms.
    headers = custom_signed(["(request-target)", "host", "date"],
                            {"Host": "remote.example", "Date": DATE}, "get /users/alice")
    verify(headers, method="GET", path="/users/alice", query="page=2", body=None)


def test_tampered_body_is_a_digest_mismatch():
    with pytest.raises(Unauthorized, match="Digest does not match"):
        verify(signed_post(), body=b'{"type":"Delete"}')


def test_tampered_signed_header_fails():
    headers = signed_post()
    headers["Host"] = "evil.example"
    with pytest.raises(Unauthorized, match="does not verify"):
        verify(headers)


def test_other_key_fails():
    _, other_public = generate_rsa_keypair()
    with pytest.raises(Unauthorized, match="does not verify"):
        verify(signed_post(), pem=other_public)


def test_stale_date_is_refused():
    headers = signed_post(now=NOW - timedelta(hours=12, minutes=1))
    with pytest.raises(Unauthorized, match="too old"):
        verify(headers)


def test_date_eleven_hours_old_is_accepted():
    verify(signed_post(now=NOW - timedelta(hours=11)))


def test_future_date_is_refused():
    headers = signed_post(now=NOW + timedelta(hours=1, minutes=1))
    with pytest.raises(Unauthorized, match="future"):
        verify(headers)


def test_lower_case_digest_algorithm_is_accepted():
    digest = "sha-256=" + POST_DIGEST.split("=", 1)[1]
    headers = custom_signed(["(request-target)", "host", "date", "digest"],
                            {"Host": "remote.example", "Date": DATE, "Digest": digest},
                            "post /users/alice/inbox")
    verify(headers)


def test_post_whose_signature_omits_digest_is_refused():
    headers = custom_signed(["(request-target)", "host", "date"],
                            {"Host": "remote.example", "Date": DATE, "Digest": POST_DIGEST},
                            "post /users/alice/inbox")
    with pytest.raises(Unauthorized, match="does not cover digest"):
        verify(headers)


def test_signature_must_cover_date():
    headers = custom_signed(["(request-target)", "host"], {"Host": "remote.example", "Date": DATE},
                            "get /users/alice")
    with pytest.raises(Unauthorized, match="does not cover date"):
        verify(headers, method="GET", path="/users/alice", body=None)


def test_authorization_signature_form_is_parsed():
    value = signed_post()["Signature"]
    params = parse_signature_header("Signature " + value)
    assert params.key_id == KEY_ID
    assert params.algorithm == "rsa-sha256"
    assert params.headers == ("(request-target)", "host", "date", "digest", "content-type")
    assert params.signature == base64.b64decode(POST_SIGNATURE)
    assert parse_signature_header("signature " + value) == params


def test_signature_header_without_key_id_is_refused():
    with pytest.raises(Unauthorized, match="keyId"):
        parse_signature_header('algorithm="rsa-sha256",signature="AAAA"')


def test_sha256_digest_format():
    assert sha256_digest(BODY) == POST_DIGEST
