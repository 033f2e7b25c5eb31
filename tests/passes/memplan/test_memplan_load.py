"""A user's buffer list (JSON or CSV) as a planning problem; every malformed
file is refused with its name and the entry at fault."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmc.errors import UsageError
from llmc.passes.memplan import check_plan, load_buffers, plan, plan_to_json

ROWS = [{"name": "a", "size": 384, "start": 5, "end": 8},
        {"name": "b", "size": 320, "start": 3, "end": 5},
        {"name": "c", "size": 256, "start": 1, "end": 2, "alignment": 256},
        {"name": "d", "size": 64, "start": 4, "end": 6, "bank": "within"}]


def test_json_and_csv_give_the_same_problem(tmp_path: Path):
    j = tmp_path / "b.json"
    j.write_text(json.dumps({"alignment": 64, "bank_bytes": 1024, "buffers": ROWS}))
    c = tmp_path / "b.csv"
    c.write_text("end,name,size,start,alignment,bank\n8,a,384,5,,\n5,b,320,3,,\n"
                 "2,c,256,1,256,\n6,d,64,4,,within\n\n")
    pj, pc = load_buffers(j), load_buffers(c, alignment=64, bank_bytes=1024)
    assert pj.buffers == pc.buffers and pj.alignment == 64
    assert pj.bank_bytes == 1024 == pc.bank_bytes
    assert pj.buffers[2].alignment == 256 and pj.buffers[3].bank == "within"


def test_a_plan_json_can_be_planned_again(tmp_path: Path):
    j = tmp_path / "b.json"
    j.write_text(json.dumps(ROWS[:2]))
    prob = load_buffers(j)
    again = tmp_path / "plan.json"
    again.write_text(json.dumps(plan_to_json(prob, plan(prob))))
    with pytest.raises(UsageError, match="unknown"):  # whole plan.json: an object with extras
        load_buffers(again)
    again.write_text(json.dumps(plan_to_json(prob, plan(prob))["buffers"]))
    p2 = load_buffers(again)
    check_plan(p2, plan(p2))


def test_access_steps_and_ranges(tmp_path: Path):
    j = tmp_path / "b.json"
    j.write_text(json.dumps([{"name": "x", "size": 64, "start": 0, "end": 9,
                              "access": [3, [5, 6]]}]))
    (b,) = load_buffers(j).buffers
    assert b.access == ((3, 3), (5, 6))
    assert b.anchors() == [(0, 0), (3, 3), (5, 6), (9, 9)]


@pytest.mark.parametrize("name,text,msg", [
    ("neg.json", '[{"name": "a", "size": -5, "start": 0, "end": 1}]',
     r"neg.json: entry 0 \('a'\): size must be non-negative, got -5"),
    ("order.json", '[{"name": "a", "size": 5, "start": 0, "end": 1},'
                   ' {"name": "b", "size": 5, "start": 4, "end": 2}]',
     r"order.json: entry 1 \('b'\): end \(step 2\) is before start \(step 4\)"),
    ("dup.json", '[{"name": "a", "size": 5, "start": 0, "end": 1},'
                 ' {"name": "a", "size": 6, "start": 1, "end": 1}]',
     r"dup.json: entry 1 \('a'\): buffer name 'a' repeats entry 0 \('a'\)"),
    ("broken.json", '[{"name": "a", "size": 5,', r"broken.json: not valid JSON \(line 1"),
    ("noise.txt", "this is not a table\n", r"noise.txt: not JSON, and not CSV with a header"),
    ("missing.json", '[{"name": "a", "size": 5, "start": 0}]',
     r"missing.json: entry 0 \('a'\): missing field\(s\) end"),
    ("float.json", '[{"name": "a", "size": 1.5, "start": 0, "end": 1}]',
     r"float.json: entry 0 \('a'\): size must be an integer, got 1.5"),
    ("typo.json", '[{"name": "a", "size": 5, "start": 0, "end": 1, "ends": 3}]',
     r"typo.json: entry 0 \('a'\): unknown field\(s\) \['ends'\]"),
    ("bank.json", '[{"name": "a", "size": 5, "start": 0, "end": 1, "bank": "middle"}]',
     r"bank.json: entry 0 \('a'\): bank must be one of"),
    ("nobank.json", '[{"name": "a", "size": 5, "start": 0, "end": 1, "bank": "start"}]',
     r"nobank.json: buffer 'a' has bank rule 'start' but the problem has no bank size"),
    ("neg.csv", "name,size,start,end\na,1,0,1\nb,-2,0,1\n",
     r"neg.csv: line 3 \('b'\): size must be non-negative, got -2"),
    ("order.csv", "name,size,start,end\na,1,3,1\n",
     r"order.csv: line 2 \('a'\): end \(step 1\) is before start \(step 3\)"),
    ("dup.csv", "name,size,start,end\na,1,0,1\na,1,0,1\n",
     r"dup.csv: line 3 \('a'\): buffer name 'a' repeats line 2 \('a'\)"),
    ("cols.csv", "name,size,start\na,1,0\n", r"cols.csv: not JSON, and not CSV .*missing end"),
    ("short.csv", "name,size,start,end\na,1,0\n", r"short.csv: line 2: 3 fields, the header has 4"),
    ("word.csv", "name,size,start,end\na,big,0,1\n",
     r"word.csv: line 2 \('a'\): size must be an integer, got 'big'"),
])
def test_malformed_files_name_the_file_and_entry(tmp_path: Path, name: str, text: str, msg: str):
    f = tmp_path / name
    f.write_text(text)
    with pytest.raises(UsageError, match=msg) as e:
        load_buffers(f)
    assert "\n" not in str(e.value)


def test_unreadable_file(tmp_path: Path):
    with pytest.raises(UsageError, match="cannot read the buffer list"):
        load_buffers(tmp_path / "nope.json")
