#!/usr/bin/env python3
"""moto_server, but with flask/werkzeug `request.url` built from the raw request target.

Why: with IAM enforcement on, moto re-computes the SigV4 signature from `request.url`.
Werkzeug 3.x builds `request.url` as an IRI, i.e. it percent-DECODES many characters
(query: / : @ , ; ! $ ' ( ) * ? and non-ASCII; path: = : @ , ; ! $ ' ( ) * + & % and
non-ASCII).  SDKs sign the percent-ENCODED form, so e.g. ListMultipartUploads(Prefix="a/b")
or any key containing "=" fails with SignatureDoesNotMatch.  Using the raw request line
(RAW_URI, set by werkzeug's dev server) makes moto re-sign exactly what the client signed.
moto itself already reads S3 key names from RAW_URI and query params from request.args,
so nothing else changes.

Usage: python moto_server_rawurl.py -H 127.0.0.1 -p PORT      (same args as moto_server)
"""
import sys

from werkzeug.sansio.utils import get_current_url
from werkzeug.wrappers.request import Request


def _raw_url(self: Request) -> str:
    raw = self.environ.get("RAW_URI") or self.environ.get("REQUEST_URI")
    if not raw:
        return get_current_url(self.scheme, self.host, self.root_path, self.path, self.query_string)
    if raw.startswith("/"):
        return f"{self.scheme}://{self.host}{raw}"
    return raw  # absolute-form request target (proxy style)


Request.url = property(_raw_url)  # shadows the cached_property of werkzeug.sansio.request.Request

from moto.server import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
