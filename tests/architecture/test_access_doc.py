"""docs/access.md is generated from services/common/access.py and must not go stale."""

from __future__ import annotations

from services.common import access
from tools import access_doc


def test_docs_access_md_is_fresh() -> None:
    assert access_doc.DEFAULT_OUT.read_text() == access_doc.render(), "run `make access-doc` and commit"


def test_every_rpc_of_the_matrix_is_in_the_document() -> None:
    text = access_doc.render()
    for rpc in (*access.PUBLIC, *access.INTERNAL):
        assert f"| {rpc.split('/')[1]} |" in text, rpc


def test_the_pki_tool_knows_every_peer() -> None:
    from tools import devpki

    assert set(devpki.IDENTITIES) == {p.value for p in access.Peer}
