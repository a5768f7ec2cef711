# Ferry: the SHA-256 of each block of a disk, 32 raw bytes per block, in order.
# argv: device, block size. Two threads hash while the main one reads.
import hashlib, os, sys
from collections import deque
from concurrent.futures import ThreadPoolExecutor

dev, bs = sys.argv[1], int(sys.argv[2])
seg = bs * 64
fd = os.open(dev, os.O_RDONLY)
out = getattr(sys.stdout, "buffer", sys.stdout)


def fill():
    parts, got = [], 0
    while got < seg:
        b = os.read(fd, seg - got)
        if not b:
            break
        parts.append(b)
        got += len(b)
    return b"".join(parts)


def digests(data):
    m = memoryview(data)
    return b"".join(hashlib.sha256(m[i:i + bs]).digest() for i in range(0, len(data), bs))


with ThreadPoolExecutor(max(1, min(2, os.cpu_count() or 1))) as pool:
    queue = deque()
    while True:
        data = fill()
        if data:
            queue.append(pool.submit(digests, data))
        while queue and (len(queue) > 4 or len(data) < seg):
            out.write(queue.popleft().result())
        if len(data) < seg:
            break
out.flush()
