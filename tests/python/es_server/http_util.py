"""HTTP helpers independent of the handler: the Response type, request body decompression
(gzip, deflate) and the accepted Content-Types."""

import zlib

from .errors import HttpError, request_error


class Response:
    def __init__(self, status, body=None, headers=(), close=False):
        self.status = status
        self.body = body  # JSON-able, bytes, or None for no body
        self.headers = list(headers)
        self.close = close


def decompress(data, encoding, limit):
    """Inflates a gzip or deflate body, never past `limit` bytes (413 beyond)."""
    if encoding in ("gzip", "x-gzip"):
        wbits_options = [31]
    else:  # deflate: zlib-wrapped, or raw as some clients send it
        wbits_options = [15, -15]
    last_error = None
    for wbits in wbits_options:
        try:
            out = bytearray()
            rest = data
            while rest:
                inflater = zlib.decompressobj(wbits)
                out += inflater.decompress(rest, limit + 1 - len(out))
                if len(out) > limit or inflater.unconsumed_tail:
                    raise HttpError(413, None, close=True)
                if not inflater.eof:
                    raise zlib.error("truncated compressed body")
                rest = inflater.unused_data if wbits == 31 else b""
            return bytes(out)
        except zlib.error as e:
            last_error = e
    raise request_error(400, "illegal_argument_exception", f"failed to decompress the request body ({encoding}): {last_error}")


def content_type_ok(value):
    media = value.split(";", 1)[0].strip().lower()
    return media in (
        "application/json", "application/x-ndjson",
        "application/vnd.elasticsearch+json", "application/vnd.elasticsearch+x-ndjson",
    )
