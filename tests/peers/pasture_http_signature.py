"""Serve fediverse-pasture's http_signature checker on loopback: `pasture_http_signature.py PORT`.

GET / and POST / answer 200/202 with a log ending in "SUCCESS!!!" when the draft-cavage
signature verifies (it fetches the keyId itself), else 401 with an "x error" entry.
"""

import logging
import sys

from fediverse_pasture.server.http_signature import http_signature_blueprint
from quart import Quart


def main() -> None:
    # Its step log (headers, signing string, "SUCCESS!!!") goes to stdout for the test to read.
    logging.basicConfig(level=logging.INFO)
    app = Quart(__name__)
    app.register_blueprint(http_signature_blueprint)
    app.run(host="127.0.0.1", port=int(sys.argv[1]), use_reloader=False)


if __name__ == "__main__":
    main()
