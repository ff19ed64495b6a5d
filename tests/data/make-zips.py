#!/usr/bin/env python3
"""Writes the ZIP corpus of tests/unit/test_extract.c.

Each case is one file in tests/data/zips/, listed in CASES.tsv with its
expected outcome; test_extract runs every row, so a new case needs a
function here and a row, no C.  Hostile archives are written byte by
byte (struct), since zipfile cleans up names and refuses to lie; the
output is the same on every run.

    python3 tests/data/make-zips.py

CASES.tsv columns, tab-separated, "-" for none:

    file         the archive, in tests/data/zips/
    expect       ok, refused, invalid or limit (enum extract_result)
    message      a substring of the error (for ok: -)
    max_bytes    limit on data bytes, else the default (500 MiB)
    max_entries  limit on entries, else the default (10000)
    paths        for ok, what must exist, comma-separated:
                 "d/" a folder, "f" a file, "f*" an executable file,
                 "f=N" a file of N bytes
"""

import gzip
import os
import struct
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, 'zips')

DOS_TIME = 0
DOS_DATE = (2024 - 1980) << 9 | 1 << 5 | 1
HOST_DOS = 0
HOST_UNIX = 3
FLAG_UTF8 = 0x0800

S_IFREG = 0o100000
S_IFDIR = 0o040000


def deflate(data):
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


class Entry:
    """One entry; the keyword arguments override what a writer computes."""

    def __init__(self, name, data=b'', mode=None, method=0, host=HOST_UNIX,
                 attr=None, flags=0, crc=None, csize=None, usize=None,
                 local_name=None, cextra=b'', lextra=b'', z64_offset=False,
                 packed=None):
        if isinstance(name, str):
            name = name.encode('utf-8')
        if mode is None:
            mode = S_IFDIR | 0o755 if name.endswith(b'/') else \
                S_IFREG | 0o644
        self.name = name
        self.data = data
        self.method = method
        self.host = host
        self.attr = attr if attr is not None else mode << 16
        self.flags = flags
        self.packed = packed if packed is not None else \
            (deflate(data) if method == 8 else data)
        self.crc = crc if crc is not None else zlib.crc32(data)
        self.csize = csize if csize is not None else len(self.packed)
        self.usize = usize if usize is not None else len(data)
        self.local_name = local_name if local_name is not None else name
        self.cextra = cextra
        self.lextra = lextra
        self.z64_offset = z64_offset


def build(entries, zip64_end=False, disk=0, count=None):
    """The archive's bytes: local records, central directory, end."""
    out = bytearray()
    central = bytearray()
    for e in entries:
        offset = len(out)
        out += struct.pack('<IHHHHHIIIHH', 0x04034b50, 20, e.flags,
                           e.method, DOS_TIME, DOS_DATE, e.crc, e.csize,
                           e.usize, len(e.local_name), len(e.lextra))
        out += e.local_name + e.lextra + e.packed
        extra = e.cextra
        if e.z64_offset:
            extra = struct.pack('<HHQ', 0x0001, 8, offset) + extra
            offset = 0xffffffff
        central += struct.pack('<IHHHHHHIIIHHHHHII', 0x02014b50,
                               e.host << 8 | 20, 20, e.flags, e.method,
                               DOS_TIME, DOS_DATE, e.crc, e.csize, e.usize,
                               len(e.name), len(extra), 0, 0, 0, e.attr,
                               offset)
        central += e.name + extra

    cd_offset = len(out)
    out += central
    n = len(entries) if count is None else count
    if zip64_end:
        z64 = len(out)
        out += struct.pack('<IQHHIIQQQQ', 0x06064b50, 44, 45, 45, 0, 0, n,
                           n, len(central), cd_offset)
        out += struct.pack('<IIQI', 0x07064b50, 0, z64, 1)
        out += struct.pack('<IHHHHIIH', 0x06054b50, 0, 0, 0xffff, 0xffff,
                           0xffffffff, 0xffffffff, 0)
    else:
        out += struct.pack('<IHHHHIIH', 0x06054b50, disk, disk, n, n,
                           len(central), cd_offset, 0)
    return bytes(out)


def files(*names):
    return build([Entry(n, b'x') for n in names])


# Cases: name -> (bytes, expect, message, max_bytes, max_entries, paths)

CASES = {}


def case(name, data, expect, message='-', max_bytes='-', max_entries='-',
         paths='-'):
    CASES[name] = (data, expect, message, max_bytes, max_entries, paths)


def valid_cases():
    case('ok-nested.zip', build([
        Entry('site/'), Entry('site/a/'), Entry('site/a/b/'),
        Entry('site/a/b/c.txt', b'c' * 1000, method=8),
        Entry('site/x.txt', b'hello\n'),
        Entry('top.txt', b''),
        Entry('implicit/deep/file.txt', b'implied folders'),
    ]), 'ok', paths='site/a/b/,site/a/b/c.txt=1000,site/x.txt=6,'
        'top.txt=0,implicit/deep/,implicit/deep/file.txt')
    case('ok-executable.zip', build([
        Entry('bin/run.sh', b'#!/bin/sh\necho hi\n', mode=S_IFREG | 0o755),
        Entry('bin/group-exec', b'x', mode=S_IFREG | 0o710),
        Entry('bin/data.txt', b'x', mode=S_IFREG | 0o600),
        Entry('bin/no-perms', b'x', mode=S_IFREG),
    ]), 'ok', paths='bin/run.sh*,bin/group-exec*,bin/data.txt,bin/no-perms')
    case('ok-static-nested.zip', build([
        Entry('my-site/'),
        Entry('my-site/index.html', b'<h1>hi</h1>\n'),
        Entry('my-site/css/style.css', b'h1{color:red}\n'),
        Entry('my-site/img/logo.svg', b'<svg/>\n'),
    ]), 'ok', paths='my-site/index.html,my-site/css/style.css,'
        'my-site/img/logo.svg')
    case('ok-dot-prefix.zip', build([
        Entry('./'), Entry('./index.html', b'i'), Entry('./assets/'),
        Entry('./assets/app.js', b'a'), Entry('a//b.txt', b'b'),
        Entry('c/./d.txt', b'd'),
    ]), 'ok', paths='index.html,assets/app.js,a/b.txt,c/d.txt')
    case('ok-percent-dots.zip', files('%2e%2e/x.txt', '%2e%2e%2fy.txt',
                                      '...', '..a/b.txt', 'a../c.txt'),
         'ok', paths='%2e%2e/x.txt,%2e%2e%2fy.txt,...,..a/b.txt,a../c.txt')
    lookalikes = ['caf\u00e9/index.html', '\uff0e\uff0e/x.txt',
                  '\u2025/y.txt', '\u2024\u2024/z.txt', 'a\u2215b.txt']
    case('ok-unicode.zip',
         build([Entry(n, b'u', flags=FLAG_UTF8) for n in lookalikes]),
         'ok', paths=','.join(lookalikes))
    case('ok-dos-host.zip', build([
        Entry('docs/', host=HOST_DOS, attr=0x10),
        Entry('docs/readme.txt', b'r', host=HOST_DOS, attr=0x20),
        Entry('docs/ro.txt', b'r', host=HOST_DOS, attr=0x21),
    ]), 'ok', paths='docs/,docs/readme.txt,docs/ro.txt')
    case('ok-repeated-dir.zip', build([
        Entry('a/'), Entry('a/f.txt', b'f'), Entry('a/'),
        Entry('b/c.txt', b'c'), Entry('b/'),
    ]), 'ok', paths='a/f.txt,b/c.txt')
    case('ok-zip64.zip', build([
        Entry('z.txt', b'zip64', z64_offset=True),
        Entry('y.txt', b'why', method=8),
    ], zip64_end=True), 'ok', paths='z.txt=5,y.txt=3')
    long_ok = '/'.join(['n' * 200] * 5)
    long_ok += '/' + 'e' * (1024 - len(long_ok) - 1)
    case('ok-name-1024.zip', files(long_ok), 'ok', paths=long_ok)
    big = b'L' * (1 << 20)
    case('ok-lying-stored.zip', build([
        Entry('x.txt', big, csize=10, usize=10, crc=zlib.crc32(big[:10])),
        Entry('y.txt', b'after'),
    ]), 'ok', paths='x.txt=10,y.txt=5')
    case('ok-bytes-at-limit.zip', build([
        Entry('a.bin', b'\0' * (512 << 10), method=8),
        Entry('b.bin', b'\0' * (512 << 10), method=8),
    ]), 'ok', max_bytes=str(1 << 20), paths='a.bin=524288,b.bin=524288')
    case('ok-entries-at-limit.zip', files(*['f%d' % i for i in range(10)]),
         'ok', max_entries='10', paths='f0,f9')


def unicode_path(name, upath):
    """Info-ZIP Unicode Path extra field (0x7075) giving upath."""
    body = struct.pack('<BI', 1, zlib.crc32(name)) + upath
    return struct.pack('<HH', 0x7075, len(body)) + body


def traversal_cases():
    for file, name in [
            ('trav-dotdot.zip', '../x.txt'),
            ('trav-nested.zip', 'a/../../x.txt'),
            ('trav-inner.zip', 'a/../b.txt'),
            ('trav-dot-dotdot.zip', './../x.txt'),
            ('trav-dotdot-dir.zip', 'a/../'),
            ('trav-trailing.zip', 'a/..'),
            ('trav-deep.zip', 'a/b/c/../../../../etc/passwd'),
    ]:
        case(file, files(name), 'refused', 'leaves the archive')
    case('trav-absolute.zip', files('/etc/x.txt'), 'refused',
         'path is absolute')
    case('trav-double-slash.zip', files('//etc/x.txt'), 'refused',
         'path is absolute')
    for file, name in [
            ('trav-backslash.zip', '..\\x.txt'),
            ('trav-backslash-nested.zip', 'a\\..\\..\\x.txt'),
            ('trav-backslash-abs.zip', '\\etc\\x.txt'),
            ('trav-drive-backslash.zip', 'C:\\x.txt'),
    ]:
        case(file, files(name), 'refused', 'backslash')
    case('trav-drive-slash.zip', files('C:/x.txt'), 'refused',
         'drive letter')
    case('trav-drive-relative.zip', files('c:x.txt'), 'refused',
         'drive letter')
    case('trav-overlong-dot.zip', files(b'\xc0\xae\xc0\xae/x.txt'),
         'refused', 'not valid UTF-8')
    case('trav-overlong-slash.zip', files(b'..\xc0\xafx.txt'),
         'refused', 'not valid UTF-8')
    # libarchive takes the name from an Info-ZIP Unicode Path field.
    case('trav-unicode-path-extra.zip', build([
        Entry('safe.txt', b's', cextra=unicode_path(b'safe.txt',
                                                     b'../evil.txt'),
              lextra=unicode_path(b'safe.txt', b'../evil.txt')),
    ]), 'refused', "entry 1 '../evil.txt': path leaves the archive")
    case('trav-local-name.zip',
         build([Entry('ok.txt', b'x', local_name=b'../x.txt')]),
         'refused', 'local header names it differently')
    case('trav-after-good.zip', files('good.txt', 'dir/good.txt',
                                      'dir/../../x.txt'),
         'refused', "entry 3 'dir/../../x.txt': path leaves the archive")


def type_cases():
    case('link-symlink.zip',
         build([Entry('link', b'/etc/passwd', mode=0o120777)]),
         'refused', 'symbolic links are not allowed')
    case('link-then-file.zip', build([
        Entry('link', b'/tmp', mode=0o120777),
        Entry('link/evil.txt', b'through the link'),
    ]), 'refused', "entry 1 'link': symbolic links")
    case('link-dir-slash.zip',
         build([Entry('link/', b'/etc', mode=0o120777)]),
         'refused', 'symbolic links are not allowed')
    case('link-relative.zip',
         build([Entry('up', b'../../..', mode=0o120755)]),
         'refused', 'symbolic links are not allowed')
    case('type-fifo.zip', build([Entry('fifo', mode=0o010644)]),
         'refused', 'FIFOs are not allowed')
    case('type-chardev.zip', build([Entry('null', mode=0o020666)]),
         'refused', 'device files are not allowed')
    case('type-blockdev.zip', build([Entry('sda', mode=0o060660)]),
         'refused', 'device files are not allowed')
    case('type-socket.zip', build([Entry('sock', mode=0o140755)]),
         'refused', 'sockets are not allowed')
    case('mode-setuid.zip',
         build([Entry('su', b'x', mode=S_IFREG | 0o4755)]),
         'refused', 'set-uid, set-gid and sticky bits')
    case('mode-setgid.zip',
         build([Entry('sg', b'x', mode=S_IFREG | 0o2755)]),
         'refused', 'set-uid, set-gid and sticky bits')
    case('mode-sticky-dir.zip',
         build([Entry('tmp/', mode=S_IFDIR | 0o1777)]),
         'refused', 'set-uid, set-gid and sticky bits')
    case('enc-traditional.zip',
         build([Entry('secret.txt', bytes(12) + b'cipher', flags=1)]),
         'refused', 'encrypted entries are not supported')


def name_cases():
    case('name-nul.zip', files(b'evil.txt\0.png'), 'refused',
         'NUL byte')
    case('name-nul-local.zip',
         build([Entry(b'evil.txt', b'x', local_name=b'evil.txt\0.png')]),
         'refused', 'local header names it differently')
    case('name-control.zip', files(b'a\x01b.txt'), 'refused',
         'control character')
    case('name-newline.zip', files(b'a\nb.txt'), 'refused',
         'control character')
    case('name-del.zip', files(b'a\x7fb.txt'), 'refused',
         'control character')
    long_bad = '/'.join(['n' * 200] * 5)
    long_bad += '/' + 'e' * (1025 - len(long_bad) - 1)
    case('name-too-long.zip', files(long_bad), 'refused',
         'name is 1025 bytes, over the limit of 1024')
    case('name-segment.zip', files('s' * 256), 'refused',
         'segment is over 255 bytes')
    case('name-empty.zip', files(''), 'refused', 'empty name')
    case('name-dot-file.zip', files('.'), 'refused',
         'cannot take the place of the destination')
    case('name-invalid-utf8.zip', files(b'\xff\xfe.txt'), 'refused',
         'not valid UTF-8')
    case('name-utf8-flag-invalid.zip',
         build([Entry(b'caf\xe9.txt', b'x', flags=FLAG_UTF8)]),
         'refused', 'not valid UTF-8')
    case('dup-file.zip', files('a.txt', 'a.txt'), 'refused',
         "entry 2 'a.txt': duplicate entry")
    case('dup-normalised.zip', files('a.txt', './a.txt'), 'refused',
         'duplicate entry')
    case('dup-file-then-dir.zip',
         build([Entry('a', b'x'), Entry('a/')]),
         'refused', 'duplicate entry: a file already has this path')
    case('dup-dir-then-file.zip',
         build([Entry('a/'), Entry('a', b'x')]),
         'refused', 'duplicate entry')
    case('dup-file-as-parent.zip', files('a', 'a/b.txt'), 'refused',
         'a folder in its path is a file')


def zeros_deflated(size):
    """size zero bytes, deflated, without holding them in memory."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = bytes(1 << 20)
    packed = bytearray()
    crc = 0
    for _ in range(size >> 20):
        packed += c.compress(chunk)
        crc = zlib.crc32(chunk, crc)
    packed += c.flush()
    return bytes(packed), crc


def limit_cases():
    size = 600 << 20
    packed, crc = zeros_deflated(size)
    case('bomb.zip',
         build([Entry('zeros.bin', method=8, packed=packed, crc=crc,
                      usize=size)]),
         'limit', 'passes the limit of 524288000 bytes')
    case('bomb-total.zip', build([
        Entry('a.bin', b'\0' * (400 << 10), method=8),
        Entry('b.bin', b'\0' * (400 << 10), method=8),
        Entry('c.bin', b'\0' * (400 << 10), method=8),
    ]), 'limit', "entry 3 'c.bin': the data passes the limit",
         max_bytes=str(1 << 20))
    big = b'A' * (2 << 20)
    lying = build([Entry('x', big, method=8, usize=10),
                   Entry('y', b'hi')])
    case('lying-deflate.zip', lying, 'invalid', 'not a valid ZIP archive')
    case('lying-deflate-limit.zip', lying, 'limit',
         'the data passes the limit', max_bytes=str(1 << 20))
    case('many-entries.zip',
         build([Entry('%x' % i) for i in range(10001)]),
         'limit', 'the archive has 10001 entries, over the limit of 10000')
    case('entries-over-limit.zip', files(*['f%d' % i for i in range(11)]),
         'limit', 'the archive has 11 entries, over the limit of 10',
         max_entries='10')


def broken_cases():
    valid = build([Entry('index.html', b'<p>' * 100, method=8),
                   Entry('app.js', b'console.log(1)\n' * 50, method=8)])
    case('trunc-half.zip', valid[:len(valid) // 2], 'invalid',
         'not a valid ZIP archive')
    case('trunc-tail.zip', valid[:-10], 'invalid',
         'no end of central directory record')
    case('trailing-junk.zip', valid + b'junk', 'invalid',
         'no end of central directory record')
    case('not-a-zip.zip', b'this is not a zip archive\n', 'invalid',
         'not a valid ZIP archive')
    case('gzip-named-zip.zip', gzip.compress(b'hello\n' * 10, mtime=0),
         'invalid', 'not a valid ZIP archive')
    case('zero-bytes.zip', b'', 'invalid', 'the file is empty')
    case('empty-archive.zip', build([]), 'invalid', 'the archive is empty')
    case('multi-disk.zip', build([Entry('a.txt', b'a')], disk=1),
         'invalid', 'multi-disk')
    garbled = bytearray(deflate(b'some text ' * 100))
    garbled[2:10] = b'\xff' * 8
    case('corrupt-deflate.zip',
         build([Entry('t.txt', b'some text ' * 100, method=8,
                      packed=bytes(garbled))]),
         'invalid', 'not a valid ZIP archive')
    case('corrupt-crc.zip', build([Entry('t.txt', b'text', crc=1234)]),
         'invalid', 'not a valid ZIP archive')
    # Two central records for one local record (overlapping entries).
    one = build([Entry('a.txt', b'a')])
    cd = one.index(b'PK\x01\x02')
    record = one[cd:-22]
    overlap = one[:-22] + record + struct.pack(
        '<IHHHHIIH', 0x06054b50, 0, 0, 2, 2, 2 * len(record), cd, 0)
    case('overlap-local.zip', overlap, 'invalid', 'central directory')
    two = [Entry('a.txt', b'a'), Entry('../b.txt', b'b')]
    case('count-lie-less.zip', build(two, count=1), 'invalid',
         'central directory')
    case('count-lie-more.zip', build(two[:1], count=3), 'invalid',
         'central directory')


def main():
    valid_cases()
    traversal_cases()
    type_cases()
    name_cases()
    limit_cases()
    broken_cases()

    os.makedirs(OUT, exist_ok=True)
    for old in os.listdir(OUT):
        if old.endswith('.zip'):
            os.unlink(os.path.join(OUT, old))
    rows = ['# file\texpect\tmessage\tmax_bytes\tmax_entries\tpaths'
            '   (written by tests/data/make-zips.py)']
    for name in sorted(CASES):
        data, *fields = CASES[name]
        with open(os.path.join(OUT, name), 'wb') as f:
            f.write(data)
        rows.append('\t'.join([name] + fields))
    with open(os.path.join(OUT, 'CASES.tsv'), 'w', encoding='utf-8') as f:
        f.write('\n'.join(rows) + '\n')
    print('%d cases in %s' % (len(CASES), OUT), file=sys.stderr)


if __name__ == '__main__':
    main()
