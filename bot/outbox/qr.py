"""QR codes of invitation links, as PNG bytes (for the email and the partner's DM)."""

from __future__ import annotations

import struct
import sys
import zlib

# Any of the eight masks gives a valid code that every reader decodes. Letting the library try
# all eight and score them cost 3x the CPU of the whole code (~22 ms against ~7 ms), on the
# background worker every approval and invitation goes through (docs/performance.md).
MASK_PATTERN = 0

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def load_without_pillow() -> None:
    """Imports qrcode without the Pillow drawers it imports only when Pillow can be imported
    ("for backwards compatibility", qrcode/image/styles/moduledrawers/__init__.py): this
    module writes its PNGs itself, and Pillow cost the worker ~4 MB of RSS (2.5 of PSS).
    Pillow reads as absent while qrcode is imported: call it while no other thread imports
    (the worker does, before its send threads start). Pillow itself is left importable (the
    weekly report's chart needs it), and qrcode's own Pillow images import it directly."""
    if "qrcode" in sys.modules or "PIL" in sys.modules:
        return
    sys.modules["PIL"] = None  # type: ignore[assignment]  # the import system's "not found"
    try:
        import qrcode  # noqa: F401
    finally:
        del sys.modules["PIL"]


def qr_png(data: str, box_size: int = 8) -> bytes:
    """A PNG whose QR code encodes exactly `data` (medium error correction, 4-module border)."""
    # Imported here: the web process, which imports this module through the senders, never
    # draws one; the worker imports qrcode when it starts (`load_without_pillow`).
    import qrcode
    from qrcode.constants import ERROR_CORRECT_M

    code = qrcode.QRCode(
        error_correction=ERROR_CORRECT_M, box_size=box_size, border=4, mask_pattern=MASK_PATTERN
    )
    code.add_data(data)
    code.make(fit=True)
    return _png(code.get_matrix(), box_size)


def _png(modules: list[list[bool]], box_size: int) -> bytes:
    """A black-on-white, one bit per pixel PNG of `modules` (True = dark), each module a
    `box_size` square. Written directly: drawing each module as a rectangle through Pillow
    cost as much CPU as computing the code."""
    width = len(modules) * box_size
    row_bytes = (width + 7) // 8
    black, white = "0" * box_size, "1" * box_size  # one bit per pixel, 0 is black
    scanlines = []
    for row in modules:
        bits = "".join([black if dark else white for dark in row]).ljust(row_bytes * 8, "1")
        scanlines += [b"\0" + int(bits, 2).to_bytes(row_bytes, "big")] * box_size  # filter 0
    header = struct.pack(">IIBBBBB", width, width, 1, 0, 0, 0, 0)  # 1-bit greyscale
    return b"".join(
        (
            _PNG_SIGNATURE,
            _chunk(b"IHDR", header),
            # zlib's default level: level 9 took 10x as long on these repetitive rows
            _chunk(b"IDAT", zlib.compress(b"".join(scanlines))),
            _chunk(b"IEND", b""),
        )
    )


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
