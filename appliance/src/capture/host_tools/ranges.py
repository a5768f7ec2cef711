# Ferry: the bytes of the ranges listed on stdin ("offset length" lines), back to back.
# argv: device.
import os, sys

fd = os.open(sys.argv[1], os.O_RDONLY)
out = getattr(sys.stdout, "buffer", sys.stdout)
words = getattr(sys.stdin, "buffer", sys.stdin).read().split()
for k in range(0, len(words), 2):
    at, n = int(words[k]), int(words[k + 1])
    while n > 0:
        b = os.pread(fd, min(n, 1 << 20), at)
        if not b:
            sys.exit("%s: short read at byte %d" % (sys.argv[1], at))
        out.write(b)
        at += len(b)
        n -= len(b)
out.flush()
