"""QR codes of invitation links, as PNG bytes (for the email and the partner's DM)."""

from __future__ import annotations

import io

import qrcode
from qrcode.constants import ERROR_CORRECT_M

# Any of the eight masks gives a valid code that every reader decodes. Letting the library try
# all eight and score them cost 3x the CPU of the whole code (~22 ms against ~7 ms), on the
# background worker every approval and invitation goes through (docs/performance.md).
MASK_PATTERN = 0


def qr_png(data: str, box_size: int = 8) -> bytes:
    """A PNG whose QR code encodes exactly `data` (medium error correction, 4-module border)."""
    code = qrcode.QRCode(
        error_correction=ERROR_CORRECT_M, box_size=box_size, border=4, mask_pattern=MASK_PATTERN
    )
    code.add_data(data)
    code.make(fit=True)
    buffer = io.BytesIO()
    code.make_image().save(buffer, format="PNG")
    return buffer.getvalue()
