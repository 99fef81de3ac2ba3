"""The GET baseline: a bare aiohttp server answering fixed paths with fixed bytes.

`python -m bench.bare_server PORT SPEC.json`; SPEC maps a path (no query) to the headers and body
fedsph answered it with, so both servers send the same bytes and differ only in the work behind.
"""

from __future__ import annotations

import base64
import json
import sys

from aiohttp import web


def make_app(spec: dict) -> web.Application:
    answers = {path: (base64.b64decode(entry["body"]), entry["headers"])
               for path, entry in spec.items()}

    async def handler(request: web.Request) -> web.Response:
        body, headers = answers[request.path]
        return web.Response(body=body, headers=headers)

    app = web.Application()
    for path in answers:
        app.router.add_get(path, handler)
    return app


def main() -> None:
    port, spec_file = int(sys.argv[1]), sys.argv[2]
    with open(spec_file) as f:
        spec = json.load(f)
    web.run_app(make_app(spec), host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    main()
