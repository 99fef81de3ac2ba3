"""Where a thing is read on this node: the one rule for the links pages print."""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from fedsph.models import Actor, Object


def page_href(item: Object | Actor) -> str:
    """Local pages are at their own URI; remote updates and actors through this node's view."""
    if item.local:
        return urlsplit(item.uri).path  # same host: a path keeps the pages small
    return remote_href("actors" if isinstance(item, Actor) else "objects", item.uri)


def remote_href(kind: str, uri: str) -> str:
    """This node's view of another server's actor (`kind` "actors") or update ("objects"), also
    for one we never fetched: the view fetches it or says it does not know it."""
    return f"/remote/{kind}?" + urlencode({"uri": uri})


def with_query(href: str, **params) -> str:
    """`href` with more query parameters, whether or not it has some already."""
    return href + ("&" if "?" in href else "?") + urlencode(params)
