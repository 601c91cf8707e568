"""Decoding a received image for its preview, in a process of its own.

An image from a peer is hostile data, and image decoders are where such data does harm: so
the TUI never decodes one itself. It starts this module as a child process (``python -I -m
pychat.tui.image_worker MODE COLS ROWS CELL_WIDTH CELL_HEIGHT PATH``) with little memory and
CPU time (:func:`limit_resources`), which opens only PNG, JPEG, GIF and WebP, refuses more
than :data:`MAX_PIXELS` pixels before decoding any, takes the first frame, scales it into
``COLS`` x ``ROWS`` cells and prints one JSON object: ``{"cols", "rows", "data"}`` (``data``
in base64: RGB pixels two per cell for ``blocks``, a PNG for ``kitty``, a sixel image for
``sixel``) or ``{"error": "why"}``. The TUI only places what comes back.
"""

from __future__ import annotations

import base64
import io
import json
import math
import re
import resource
import sys
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

#: The formats a preview is made of (what the file's content is, whatever its name says).
FORMATS = ("PNG", "JPEG", "GIF", "WEBP")
#: The most pixels an image may have (a decompression bomb claims far more than its bytes).
MAX_PIXELS = 40_000_000
#: The worker's limits: address space and CPU seconds.
MEMORY_BYTES = 1 << 30
CPU_SECONDS = 10
#: What transparent pixels are drawn on, where the terminal cannot show transparency.
BACKGROUND = (40, 40, 40)
#: Colours of a sixel image (its palette).
SIXEL_COLOURS = 255
MODES = ("blocks", "kitty", "sixel")


class ImageRefused(Exception):
    """The file is not an image a preview is made of; the message says why."""


@dataclass(frozen=True)
class Request:
    """What the TUI asks for: a mode, the most cells, and a cell's size in pixels."""

    mode: str
    cols: int
    rows: int
    cell_width: int
    cell_height: int

    def box(self) -> tuple[int, int]:
        """The most pixels the preview may have across and down."""
        if self.mode == "blocks":  # a cell holds two pixels, one above the other
            return self.cols, self.rows * 2
        return self.cols * self.cell_width, self.rows * self.cell_height


def limit_resources() -> None:
    """Little memory, a few CPU seconds, no file written: a decoder gone wrong stops here."""
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))


def open_image(path: str, box: tuple[int, int]) -> Image.Image:
    """The first frame of the image at ``path``, decoded (a JPEG at the smallest scale that
    still fills ``box``), in RGBA.

    :raises ImageRefused: not one of :data:`FORMATS`, too many pixels, damaged.
    """
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path, formats=FORMATS)
            width, height = image.size
            if width < 1 or height < 1 or width * height > MAX_PIXELS:
                raise ImageRefused(f"too large ({width} x {height} pixels)")
            if image.format == "JPEG":
                image.draft("RGB", box)
            image.load()
            return image.convert("RGBA")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRefused("too large (more pixels than a preview decodes)") from None
    except UnidentifiedImageError:
        raise ImageRefused("not a PNG, JPEG, GIF or WebP image") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageRefused(f"damaged image ({exc})") from None


def scaled_size(size: tuple[int, int], box: tuple[int, int]) -> tuple[int, int]:
    """``size`` made to fit ``box`` keeping its shape, never enlarged, at least 1 x 1."""
    width, height = size
    scale = min(1.0, box[0] / width, box[1] / height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def preview(image: Image.Image, request: Request) -> dict[str, object]:
    """The preview of ``image`` as the TUI takes it (see the module's text)."""
    width, height = scaled_size(image.size, request.box())
    small = image.resize((width, height), Image.Resampling.LANCZOS)
    if request.mode == "kitty":  # the terminal blends the alpha itself
        out = io.BytesIO()
        small.save(out, format="PNG")
        cols = math.ceil(width / request.cell_width)
        rows = math.ceil(height / request.cell_height)
        return _answer(cols, rows, out.getvalue())
    flat = Image.new("RGB", small.size, BACKGROUND)
    flat.paste(small, mask=small.getchannel("A"))
    if request.mode == "sixel":
        cols = math.ceil(width / request.cell_width)
        rows = math.ceil(height / request.cell_height)
        return _answer(cols, rows, sixel(flat))
    rows = math.ceil(height / 2)
    cells = Image.new("RGB", (width, rows * 2), BACKGROUND)
    cells.paste(flat)
    return _answer(width, rows, cells.tobytes())


def _answer(cols: int, rows: int, data: bytes) -> dict[str, object]:
    return {"cols": cols, "rows": rows, "data": base64.b64encode(data).decode("ascii")}


_RUN = re.compile(rb"(.)\1{3,}", re.DOTALL)


def sixel(image: Image.Image) -> bytes:
    """``image`` (RGB) as a sixel image: a palette of at most :data:`SIXEL_COLOURS`, then
    bands six pixels high, each colour's pixels of a band as one run-length coded line."""
    paletted = image.quantize(colors=SIXEL_COLOURS)
    width, height = paletted.size
    palette = paletted.getpalette() or []
    pixels = paletted.tobytes()
    used = sorted(set(pixels))
    out = [b'\x1bP0;1;0q"1;1;%d;%d' % (width, height)]
    for index in used:
        r, g, b = palette[index * 3 : index * 3 + 3]
        out.append(b"#%d;2;%d;%d;%d" % (index, r * 100 // 255, g * 100 // 255, b * 100 // 255))
    for top in range(0, height, 6):
        bits: dict[int, bytearray] = {}
        for k in range(min(6, height - top)):
            row = pixels[(top + k) * width : (top + k + 1) * width]
            for x, colour in enumerate(row):
                line = bits.get(colour)
                if line is None:
                    line = bits[colour] = bytearray(width)
                line[x] |= 1 << k
        band = [
            b"#%d" % colour
            + _RUN.sub(
                lambda m: b"!%d%c" % (len(m.group()), m.group()[0]), bytes(v + 63 for v in line)
            )
            for colour, line in sorted(bits.items())
        ]
        out.append(b"$".join(band) + b"-")
    out.append(b"\x1b\\")
    return b"".join(out)


def parse_request(argv: list[str]) -> tuple[Request, str]:
    """The request and the image's path from the command line.

    :raises ValueError: not ``MODE COLS ROWS CELL_WIDTH CELL_HEIGHT PATH`` with sane numbers.
    """
    if len(argv) != 6 or argv[0] not in MODES:
        raise ValueError("usage: image_worker MODE COLS ROWS CELL_WIDTH CELL_HEIGHT PATH")
    cols, rows, cell_width, cell_height = (int(v) for v in argv[1:5])
    if not (1 <= cols <= 200 and 1 <= rows <= 100 and 1 <= cell_width <= 100):
        raise ValueError("cells out of range")
    if not 1 <= cell_height <= 200:
        raise ValueError("cells out of range")
    return Request(argv[0], cols, rows, cell_width, cell_height), argv[5]


def main(argv: list[str]) -> int:
    """Answer one request on standard output (0), or say why not (1; 2 for a bad call)."""
    try:
        request, path = parse_request(argv)
    except ValueError as exc:
        print(json.dumps({"error": str(exc)}))
        return 2
    limit_resources()
    try:
        image = open_image(path, request.box())
        answer = preview(image, request)
    except ImageRefused as exc:
        print(json.dumps({"error": str(exc)}))
        return 1
    except MemoryError:
        print(json.dumps({"error": "too large to decode within the preview's memory"}))
        return 1
    print(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
