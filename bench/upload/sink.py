#!/usr/bin/env python3
"""A receiver that discards: the loopback ceiling of bench/upload.

Usage: sink.py

Listens on 127.0.0.1 (a free port, printed on the first line of stdout),
then for each connection reads an HTTP request's head and its
Content-Length bytes of body into one 1 MiB buffer, throwing them away,
and answers 200 with the body {}.  upload.py timed against it gives what
the same client and the kernel's loopback TCP cost with no server work:
no parsing, hashing, writing or fsync.  Runs until killed.
"""
import socket
import sys

BUF = 1 << 20


def serve(conn):
    buf = bytearray(BUF)
    view = memoryview(buf)
    head = b""
    while b"\r\n\r\n" not in head:
        n = conn.recv_into(view)
        if n == 0:
            return
        head += bytes(view[:n])
    head, _, rest = head.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    left = length - len(rest)
    while left > 0:
        n = conn.recv_into(view, min(left, BUF))
        if n == 0:
            return
        left -= n
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 2\r\nConnection: close\r\n\r\n{}")


def main():
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    print(srv.getsockname()[1], flush=True)
    while True:
        conn, _ = srv.accept()
        with conn:
            serve(conn)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
