"""Outgoing HTTPS with FEDSPH_CA_BUNDLE (issue 13, item 10): a peer whose certificate comes from
a private certificate authority is refused by default, with a clear error and nothing stored, and
trusted once the setting names that authority's certificate. Verification itself is never off."""

from __future__ import annotations

import asyncio
import ssl

import pytest

from fedsph.config import ConfigError, load_settings, outgoing_tls_context
from tests.fakepeer import FakePeer
from tests.processes import NodeProcess, wait_for
from tests.support import testdb
from tests.support.tls import issue_for, make_ca

pytestmark = pytest.mark.e2e


def test_a_bundle_that_is_not_certificates_is_a_clear_configuration_error(tmp_path):
    for content in (b"", b"not a certificate\n"):
        bad = tmp_path / "bad.pem"
        bad.write_bytes(content)
        with pytest.raises(ConfigError, match="FEDSPH_CA_BUNDLE"):
            load_settings({"FEDSPH_CA_BUNDLE": str(bad)})
    with pytest.raises(ConfigError, match="FEDSPH_CA_BUNDLE"):
        load_settings({"FEDSPH_CA_BUNDLE": str(tmp_path / "missing.pem")})
    ca = make_ca(tmp_path / "ca")
    assert load_settings({"FEDSPH_CA_BUNDLE": str(ca.ca_file)}).ca_bundle == str(ca.ca_file)
    context = outgoing_tls_context(str(ca.ca_file))
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def _actor_rows(node: NodeProcess, uri: str) -> int:
    return testdb.sql(node.data_dir, "SELECT count(*) FROM actors WHERE uri = :uri", uri=uri)[0][0]


async def _follow_refused(node: NodeProcess, uri: str) -> None:
    refused = await asyncio.to_thread(node.cli, "follow", "coop", uri, check=False)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "certificate" in refused.stderr.lower() and "Traceback" not in refused.stderr
    assert await asyncio.to_thread(_actor_rows, node, uri) == 0


async def test_a_private_ca_is_trusted_only_through_the_setting(tmp_path):
    ca, stranger_ca = make_ca(tmp_path / "ca"), make_ca(tmp_path / "other-ca")
    peer = await FakePeer(tls=ca.server_context()).start()
    # Same address, a certificate from an authority nobody trusts; and one from the trusted
    # authority but naming another address: both refused even with the setting.
    stranger = await FakePeer(tls=stranger_ca.server_context()).start()
    misnamed = await FakePeer(tls=issue_for(ca, "127.0.0.9", tmp_path / "misnamed")
                              .server_context()).start()
    bob = peer.add_actor("bob")
    eve, mallory = stranger.add_actor("eve"), misnamed.add_actor("mallory")
    node = NodeProcess(tmp_path / "node")
    try:
        await asyncio.to_thread(node.cli, "migrate")
        await asyncio.to_thread(node.cli, "project", "create", "coop", "--name", "Coop")

        # Without the setting, the peer's certificate is not trusted: a one-line error, nothing stored.
        await _follow_refused(node, bob.uri)
        assert not peer.received
        assert await asyncio.to_thread(testdb.sql, node.data_dir,
                                       "SELECT count(*) FROM follows") == [(0,)]

        # With it, the same follow goes out over HTTPS, signed, and is delivered; the other
        # authority and the certificate for another address are still refused.
        node.env["FEDSPH_CA_BUNDLE"] = str(ca.ca_file)
        await _follow_refused(node, eve.uri)
        await _follow_refused(node, mallory.uri)
        assert await asyncio.to_thread(testdb.sql, node.data_dir,
                                       "SELECT count(*) FROM follows") == [(0,)]
        await asyncio.to_thread(node.start)
        out = (await asyncio.to_thread(node.cli, "follow", "coop", bob.uri)).stdout
        assert f"coop follows {bob.uri}" in out
        await asyncio.to_thread(wait_for, lambda: any(
            r.activity.get("type") == "Follow" for r in peer.received), 60, "the Follow over HTTPS")
        follow = next(r for r in peer.received if r.activity.get("type") == "Follow")
        assert follow.verified and follow.activity["object"] == bob.uri
        assert not stranger.received and not misnamed.received
    finally:
        node.stop()
        for server in (peer, stranger, misnamed):
            await server.stop()
