#!/usr/bin/env python3
"""How costly creating files is in a new folder: bench/extract's probe.

Usage: probe.py DIR [N]

Makes DIR, creates N (default 2000) empty files in it, and prints the
CPU time that took, in milliseconds (the process's own CPU clock, user +
system, so time spent waiting for a CPU does not count).  On ext4
without a journal the cost doubles or worse where many inodes were freed
in the last minutes (see run.sh), and the files of an extraction into
DIR/out land in the same place, so run.sh uses DIR only when the cost is
close to the lowest it has seen.  The files are left in DIR.
"""
import os
import sys
import time


def main():
    if len(sys.argv) not in (2, 3):
        sys.stderr.write(__doc__)
        return 2
    folder = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) == 3 else 2000
    os.mkdir(folder)
    flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC
    t0 = time.process_time()
    for i in range(count):
        os.close(os.open(os.path.join(folder, f"probe{i}"), flags, 0o644))
    print(f"{(time.process_time() - t0) * 1000:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
