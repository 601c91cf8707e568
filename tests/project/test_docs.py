"""The protocol document and the code agree."""

from __future__ import annotations

import re
from pathlib import Path

from pychat.wire.errors import ErrorCode
from tests.paths import ROOT

DOCS = ROOT / "docs"


def test_every_error_code_is_in_the_protocol_table() -> None:
    text = (DOCS / "protocol.md").read_text()
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", text, flags=re.M))
    missing = {str(c) for c in ErrorCode} - documented
    assert not missing, f"error codes missing from docs/protocol.md: {sorted(missing)}"


def test_every_op_has_a_section_in_the_protocol_doc(tmp_path: Path) -> None:
    from tests.helpers import make_server

    text = (DOCS / "protocol.md").read_text()
    server = make_server(tmp_path)
    headings = [line for line in text.splitlines() if line.startswith("### ")]
    missing = [op for op in server.registry.names() if not any(f"`{op}`" in h for h in headings)]
    assert not missing, f"ops without a section in docs/protocol.md: {missing}"


def test_the_hello_example_lists_every_op(tmp_path: Path) -> None:
    from tests.helpers import make_server

    text = (DOCS / "protocol.md").read_text()
    example = text[text.index('"ops": [') : text.index("]", text.index('"ops": ['))]
    listed = re.findall(r'"([a-z_]+)"', example.split("[", 1)[1])
    assert listed == make_server(tmp_path).registry.names()
