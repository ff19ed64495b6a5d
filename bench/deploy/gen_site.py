#!/usr/bin/env python3
"""Generates the deploy benchmark's site: 247 files, about 25 MB, like
the original design's example (HTML pages, CSS and JS bundles, images).
Deterministic: the same bytes on every run.  Usage: gen_site.py DIR"""
import os
import random
import sys

def main():
    root = sys.argv[1]
    rnd = random.Random(247)
    words = ("wharf deploy edge build tenant static site page docs blog "
             "news about team product price faq contact help").split()

    def text(n):
        out = []
        size = 0
        while size < n:
            w = rnd.choice(words)
            out.append(w)
            size += len(w) + 1
        return " ".join(out)

    def write(rel, data):
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())

    write("index.html", "<!doctype html><title>Home</title><p id=v>v0</p>"
          + "<p>" + text(20000) + "</p>")
    for i in range(39):                           # 40 pages
        write(f"pages/page-{i:02d}/index.html",
              "<!doctype html><p>" + text(20000) + "</p>")
    for i in range(30):                           # 30 stylesheets
        write(f"assets/css/style-{i:02d}-{rnd.getrandbits(32):08x}.css",
              "".join(f".c{j} {{ margin: {j}px; color: #{j:06x}; }}\n"
                      for j in range(1500)))
    for i in range(30):                           # 30 scripts
        write(f"assets/js/app-{i:02d}-{rnd.getrandbits(32):08x}.js",
              "".join(f"function f{j}(a) {{ return a * {j} + '{text(20)}'; }}\n"
                      for j in range(700)))
    for i in range(147):                          # 147 images
        write(f"images/img-{i:03d}.jpg",
              b"\xff\xd8\xff\xe0" + rnd.randbytes(150 * 1024))

if __name__ == "__main__":
    main()
