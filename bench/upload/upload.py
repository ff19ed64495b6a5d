#!/usr/bin/env python3
"""Streams one file to Wharf's upload endpoint as multipart/form-data.

Usage: upload.py URL TENANT TOKEN FILE

The body is sent as it is read (the file goes out with socket.sendfile,
which uses the kernel's sendfile() and falls back to a send() loop), so
the client never holds the file in memory.  Prints one JSON line: the HTTP status, the seconds from
connecting to the last byte of the answer, the bytes of the file, and
the answer's data.upload.sha256 and data.build.id (or its body when it
is not a 200).
"""
import http.client
import json
import os
import sys
import time
import urllib.parse
import uuid

def main():
    if len(sys.argv) != 5:
        sys.stderr.write(__doc__)
        return 2
    url, tenant, token, path = sys.argv[1:]
    parts = urllib.parse.urlsplit(url)
    size = os.path.getsize(path)
    boundary = "wharfbench" + uuid.uuid4().hex
    head = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="x.zip"\r\n'
        "Content-Type: application/zip\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    with open(path, "rb") as f:
        t0 = time.perf_counter()
        conn = http.client.HTTPConnection(parts.hostname, parts.port,
                                          timeout=600)
        conn.putrequest("POST", f"/api/builds/{tenant}")
        conn.putheader("Authorization", f"Bearer {token}")
        conn.putheader("Content-Type",
                       f"multipart/form-data; boundary={boundary}")
        conn.putheader("Content-Length", str(len(head) + size + len(tail)))
        conn.endheaders()
        conn.send(head)
        # sendfile() where the system has it; socket falls back to send().
        sent = conn.sock.sendfile(f)
        if sent != size:
            raise OSError(f"sent {sent} of {size} bytes")
        conn.send(tail)
        resp = conn.getresponse()
        body = resp.read()
        seconds = time.perf_counter() - t0
        conn.close()

    out = {"status": resp.status, "seconds": seconds, "bytes": size}
    try:
        data = json.loads(body)["data"]
        out["sha256"] = data["upload"]["sha256"]
        out["build"] = data["build"]["id"]
    except (ValueError, KeyError, TypeError):
        out["body"] = body.decode("utf-8", "replace")[:500]
    print(json.dumps(out))
    return 0 if resp.status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
