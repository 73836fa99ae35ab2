"""Make the app icons (icon-192.png, icon-512.png) without an image library: zlib + struct.

The icon is maskable: a full-bleed teal square with the drawing inside the central safe
zone (a circle of 40 % radius), a white ring ("watch") crossed by a pulse line.
Run: python pwa/icons/make_icons.py
"""

import math
import struct
import zlib
from pathlib import Path

TEAL = (15, 95, 91)
WHITE = (255, 255, 255)
# The pulse line, in units of the icon size (0..1).
PULSE = [(0.22, 0.52), (0.38, 0.52), (0.45, 0.36), (0.53, 0.66), (0.60, 0.46), (0.64, 0.52), (0.78, 0.52)]


def _segment_distance(px: float, py: float, a: tuple, b: tuple) -> float:
    ax, ay = a
    bx, by = b
    dx, dy = bx - ax, by - ay
    t = max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy)))
    return math.hypot(px - (ax + t * dx), py - (ay + t * dy))


def pixel(x: int, y: int, size: int) -> tuple[int, int, int]:
    px, py = x + 0.5, y + 0.5
    c = size / 2
    ring = abs(math.hypot(px - c, py - c) - 0.30 * size) - 0.035 * size
    pts = [(u * size, v * size) for u, v in PULSE]
    line = min(_segment_distance(px, py, a, b) for a, b in zip(pts, pts[1:], strict=False)) - 0.028 * size
    d = min(ring, line)
    cover = max(0.0, min(1.0, 0.5 - d))  # one pixel of anti-aliasing
    return tuple(round(t + (w - t) * cover) for t, w in zip(TEAL, WHITE, strict=True))


def png(size: int) -> bytes:
    rows = b"".join(b"\x00" + bytes(v for x in range(size) for v in pixel(x, y, size)) for y in range(size))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


if __name__ == "__main__":
    here = Path(__file__).parent
    for size in (192, 512):
        (here / f"icon-{size}.png").write_bytes(png(size))
        print(f"icon-{size}.png")
