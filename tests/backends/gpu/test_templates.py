"""The kernel templates as an artifact gets them: every rendered file is a
self-contained Triton module (it imports only triton, the fragments it
shares with other templates written into it once), and fragments are never
artifact files of their own."""

from __future__ import annotations

import ast

import pytest

from llmc.backends.gpu.emit import TEMPLATES
from llmc.backends.gpu.templates import template


@pytest.mark.parametrize("kind", sorted(set(TEMPLATES.values())))
def test_a_rendered_template_imports_only_triton_and_defines_what_it_calls(kind):  # noqa: ANN001
    tree = ast.parse(template(kind))
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert imported <= {"triton", "triton.language"}
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    defined = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert len(defined) == len(set(defined))
    called = {n.func.id for n in ast.walk(tree)
              if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    assert {c for c in called if c.startswith("_")} <= set(defined)


def test_the_attention_templates_share_one_kv_tile_fragment():
    for kind in ("attention", "decode_attention"):
        text = template(kind)
        assert text.count("def _load_kv(") == 1 and text.count("def _attend_tile(") == 1
        assert "llmc.backends" not in text
    assert not any(k.startswith("_") for k in TEMPLATES.values())
