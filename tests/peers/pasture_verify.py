"""Serve fediverse-pasture's verify_actor application on loopback, over plain http.

Run with the peers python: `pasture_verify.py PORT`. Its own `verify_actor` command binds
0.0.0.0; the tests only use 127.0.0.1, so the app is built here and bound to loopback. The
domain is `127.0.0.1:PORT` so its test actors (alice … frank) have ids fedsph can fetch.
It writes its generated keys to data.toml in the working directory (run it in a temp dir).
"""

import sys

from fediverse_pasture.verify_actor import build_app


def main() -> None:
    port = int(sys.argv[1])
    app = build_app(False, f"127.0.0.1:{port}", https=False, timeout=20)
    app.run(host="127.0.0.1", port=port, use_reloader=False)


if __name__ == "__main__":
    main()
