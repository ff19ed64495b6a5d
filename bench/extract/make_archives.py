#!/usr/bin/env python3
"""Writes the archives of bench/extract, the same bytes on every run.

Usage: make_archives.py DIR

  DIR/small.zip  10,000 entries: 210 folders (10 x 4 x 4, nested three
                 deep, each listed as an entry) and 9,790 files of 1 to
                 4 KiB of text-like content, deflated; the count is Wharf's
                 default entry limit (EXTRACT_MAX_ENTRIES)
  DIR/large.zip  4 files of 50 MiB in one folder:
                   text.js    text-like, deflated (compresses about 3:1)
                   mixed.bin  1 MiB runs of text and of random bytes,
                              alternating, deflated
                   random.bin random bytes, deflated (zlib falls back to
                              stored blocks)
                   stored.bin random bytes, stored (no compression)

Only the standard library; random.Random with fixed seeds and a fixed
timestamp make the output deterministic.
"""
import os
import random
import sys
import zipfile

STAMP = (2024, 1, 1, 0, 0, 0)
MIB = 1 << 20

WORDS = (
    "const let var function return import export default from if else for "
    "while switch case break continue new this class extends super async "
    "await yield try catch finally throw typeof instanceof null undefined "
    "true false document window props state render component module div "
    "span button header footer section article main nav style color "
    "margin padding border width height display flex grid items center "
    "react vue angular svelte astro next vite webpack babel eslint jest "
    "index app page layout route fetch json data value key name id type"
).split()


def text(rng, size):
    """size bytes of lines made of keywords, punctuation and numbers."""
    out = []
    n = 0
    while n < size:
        words = rng.choices(WORDS, k=rng.randint(3, 12))
        line = "  " * rng.randint(0, 4) + " ".join(words)
        line += rng.choice((";", " {", "}", ",", ");", f" = {rng.randint(0, 9999)};"))
        line += "\n"
        out.append(line)
        n += len(line)
    return "".join(out).encode()[:size]


def info(name, method):
    zi = zipfile.ZipInfo(name, date_time=STAMP)
    zi.compress_type = method
    zi.create_system = 3                       # Unix
    if name.endswith("/"):
        zi.external_attr = (0o40755 << 16) | 0x10
    else:
        zi.external_attr = 0o100644 << 16
    return zi


def make_small(path):
    rng = random.Random(1)
    exts = (".js", ".css", ".html", ".json", ".svg", ".md")
    leaves = []
    with zipfile.ZipFile(path, "w") as z:
        for a in range(10):
            top = f"site/pkg{a:02d}/"
            z.writestr(info(top, zipfile.ZIP_STORED), b"")
            for b in range(4):
                mid = f"{top}src{b}/"
                z.writestr(info(mid, zipfile.ZIP_STORED), b"")
                for c in range(4):
                    leaf = f"{mid}part{c}/"
                    z.writestr(info(leaf, zipfile.ZIP_STORED), b"")
                    leaves.append(leaf)
        files = 10000 - 210
        for i in range(files):
            leaf = leaves[i * len(leaves) // files]   # grouped by folder
            name = f"{leaf}file{i:05d}{exts[i % len(exts)]}"
            z.writestr(info(name, zipfile.ZIP_DEFLATED),
                       text(rng, rng.randint(1024, 4096)))


def make_large(path):
    rng = random.Random(2)
    blocks = [text(rng, MIB) for _ in range(8)]
    with zipfile.ZipFile(path, "w") as z:
        with z.open(info("big/text.js", zipfile.ZIP_DEFLATED), "w") as f:
            for i in range(50):
                f.write(blocks[i % len(blocks)])
        with z.open(info("big/mixed.bin", zipfile.ZIP_DEFLATED), "w") as f:
            for i in range(50):
                f.write(blocks[i % len(blocks)] if i % 2 == 0
                        else rng.randbytes(MIB))
        with z.open(info("big/random.bin", zipfile.ZIP_DEFLATED), "w") as f:
            for _ in range(50):
                f.write(rng.randbytes(MIB))
        with z.open(info("big/stored.bin", zipfile.ZIP_STORED), "w") as f:
            for _ in range(50):
                f.write(rng.randbytes(MIB))


def main():
    if len(sys.argv) != 2:
        sys.stderr.write(__doc__)
        return 2
    out = sys.argv[1]
    make_small(os.path.join(out, "small.zip"))
    make_large(os.path.join(out, "large.zip"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
