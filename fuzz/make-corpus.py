#!/usr/bin/python3
"""Writes the seed corpora of the fuzz targets, fuzz/corpus/<target>/,
from the unit tests' data (tests/data) and a few forms of its own.

    fuzz/make-corpus.py

Each seed carries the selector bytes its target reads first (see the
comment at the top of fuzz/fuzz_<target>.c).  fuzz_extract needs none:
its seeds are tests/data/zips/ as they are.  Run it again after adding
test data; the files it writes are committed, so that `make check`
replays them and fuzz/run.sh starts from them.
"""
import pathlib
import struct

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
OUT = ROOT / "fuzz" / "corpus"


def write(target, name, data):
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


def tsv(name):
    for line in (DATA / "httputil" / name).read_text().splitlines():
        if line and not line.startswith("#"):
            yield line.split("\t")


def multipart():
    # Selector: bits 0-1 the Content-Type (0: boundary=xyz), 2-7 the
    # largest piece.
    part = (b'--xyz\r\nContent-Disposition: form-data; name="file"; '
            b'filename="site.zip"\r\nContent-Type: application/zip\r\n\r\n'
            b'PK\x03\x04 \r\n--xy \r\n-- \r\r\n--xyz-\r\n')
    config = (b'--xyz\r\nContent-Disposition: form-data; '
              b'name="buildConfig"\r\n\r\n{"framework": "static"}\r\n')
    forms = {
        "form": config + part + b"--xyz--\r\n",
        "form-lf": (config + part + b"--xyz--\r\n").replace(b"\r\n", b"\n"),
        "preamble": b"ignored\r\n" + part + b"--xyz--",
        "empty": b"",
        "no-parts": b"--xyz--\r\n",
        "unclosed": part,
        "bad-after-delim": b"--xyzQ\r\n",
        "long-header": b"--xyz\r\nX-A: " + b"a" * 3000 + b"\r\n\r\nbody"
                       b"\r\n--xyz--\r\n",
        "no-name": b"--xyz\r\nContent-Disposition: form-data\r\n\r\nx\r\n"
                   b"--xyz--\r\n",
        "unquoted": b"--xyz\r\nContent-Disposition: form-data; name=file;"
                    b" filename=a.zip\r\n\r\nx\r\n--xyz--\r\n",
    }
    for name, body in forms.items():
        for sel in (0x00, 0x04, 0x3c, 0xfc):
            write("multipart", f"{name}-{sel:02x}", bytes([sel]) + body)


def rules():
    # Selector: bit 0 set for _headers.
    for f in sorted((DATA / "rules").glob("*.txt")):
        sel = 1 if f.name.startswith("headers-") else 0
        write("rules", f.stem, bytes([sel]) + f.read_bytes())


def httputil():
    # Selector: bits 0-1 the reader (0 path, 1 Range, 2 Accept-Encoding,
    # 3 If-None-Match); then 8 bytes of body size; then the text.
    size = struct.pack("<Q", 0)
    for i, row in enumerate(tsv("paths.tsv")):
        write("httputil", f"path-{i:03d}", b"\x00" + size +
              row[0].encode())
    for i, row in enumerate(tsv("range.tsv")):
        if row[0] != "(null)":
            # Bit 2: take the size as it is, not modulo 1024.
            write("httputil", f"range-{i:03d}", b"\x05" +
                  struct.pack("<Q", int(row[1])) + row[0].encode())
    for i, row in enumerate(tsv("accept-encoding.tsv")):
        if row[0] != "(null)":
            avail = {"": 0, "gzip": 1, "br": 2}.get(row[1], 3)
            write("httputil", f"accept-{i:03d}",
                  bytes([2 | avail << 2]) + size + row[0].encode())
    for i, row in enumerate(tsv("etag.tsv")):
        if row[0] != "(null)":
            write("httputil", f"etag-{i:03d}", b"\x03" + size +
                  row[0].encode())


def http1():
    # Selector: where the bytes are cut in two (the byte modulo the
    # input's size); then the bytes of a connection.
    reqs = {
        "get": b"GET / HTTP/1.1\r\nHost: a.localhost\r\n\r\n",
        "get-lf": b"GET /a/b?x=1 HTTP/1.1\nHost: a\nAccept: */*\n\n",
        "head-10": b"HEAD /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        "absolute": b"GET http://b.localhost:8081/p?q HTTP/1.1\r\n"
                    b"Host: other\r\n\r\n",
        "absolute-bare": b"GET https://b.localhost HTTP/1.1\r\nHost: x"
                         b"\r\n\r\n",
        "options-star": b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
        "blank-lines-first": b"\r\n\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "no-host": b"GET / HTTP/1.1\r\n\r\n",
        "two-hosts": b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "body": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
                b"\r\nabc",
        "lengths": b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n"
                   b"content-length: 00\r\n\r\n",
        "chunked": b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: "
                   b"chunked\r\n\r\n",
        "http2": b"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
        "obs-fold": b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n  2\r\n\r\n",
        "space-name": b"GET / HTTP/1.1\r\nHost : a\r\n\r\n",
        "range": b"GET /img.png HTTP/1.1\r\nHost: a\r\nRange: bytes=0-9"
                 b"\r\nAccept-Encoding: br, gzip;q=0.5\r\nIf-None-Match: "
                 b"\"abc\"\r\nConnection: close, keep-alive\r\n\r\n",
        "many": b"GET / HTTP/1.1\r\nHost: a\r\n" +
                b"".join(b"X-%d: %d\r\n" % (i, i) for i in range(70)) +
                b"\r\n",
        "pipelined": b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1"
                     b"\r\nHost: a\r\n\r\n",
    }
    for name, req in reqs.items():
        write("http1", name, b"\x00" + req)
        write("http1", name + "-cut", b"\x11" + req)


if __name__ == "__main__":
    http1()
    multipart()
    rules()
    httputil()
