"""`llmc rtl regress`: cocotb suites as engine tasks, JUnit XML out."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from llmc.cli import main
from llmc.dse.regress import jobs, junit_xml, passed
from llmc.errors import UsageError


def _verdict(ok: bool) -> dict:
    return {"simulator": "icarus", "dataflow": "os", "array": "2x2", "error": None,
            "seconds": 1.0,
            "cases": [{"name": "gemm_3x2x4_seed0", "passed": ok, "wall_s": 0.1,
                       "errors": [] if ok else ["C[0][1] = 5, expected 6"],
                       "rtl_cycles": 9, "expected_cycles": 9}]}


def test_junit_counts_failures() -> None:
    root = ET.fromstring(junit_xml([_verdict(True), {**_verdict(False), "array": "4x4"}]))
    (suite,) = root
    assert suite.get("name") == "rtl-icarus"
    assert (suite.get("tests"), suite.get("failures")) == ("2", "1")
    assert suite[1].find("failure").get("message") == "C[0][1] = 5, expected 6"
    assert passed([_verdict(True)]) and not passed([_verdict(True), _verdict(False)])


def test_bad_jobs_are_refused() -> None:
    with pytest.raises(UsageError, match="simulator"):
        jobs(["modelsim"], ["2x2"], [(3, 2, 4, 0)])
    with pytest.raises(UsageError, match="RxC"):
        jobs(["icarus"], ["2by2"], [(3, 2, 4, 0)])
    with pytest.raises(UsageError, match="output- and weight-stationary arrays only"):
        jobs(["icarus"], ["2x2"], [(3, 2, 4, 0)], ["is"])
    assert [j["dataflow"] for j in jobs(["icarus"], ["2x2"], [(3, 2, 4, 0)], ["os", "WS"])] \
        == ["os", "ws"]


@pytest.mark.rtl
@pytest.mark.skipif(shutil.which("iverilog") is None, reason="needs Icarus Verilog")
def test_regress_runs_the_suites(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    pytest.importorskip("cocotb")
    out = tmp_path / "o"
    assert main(["rtl", "regress", "--simulators", "icarus", "--arrays", "2x2,3x2",
                 "--cases", "3x2x4", "-j", "2", "-o", str(out)]) == 0
    assert "4 cores, 4 cases: all passed" in capsys.readouterr().out
    report = json.loads((out / "regress.json").read_text())
    assert report["passed"] and [(j["dataflow"], j["array"]) for j in report["jobs"]] == \
        [("os", "2x2"), ("os", "3x2"), ("ws", "2x2"), ("ws", "3x2")]
    assert all(c["rtl_cycles"] == c["expected_cycles"] for j in report["jobs"]
               for c in j["cases"])
    suite = ET.parse(out / "junit.xml").getroot()[0]
    assert (suite.get("tests"), suite.get("failures")) == ("4", "0")
    assert suite[2].get("classname") == "llmc.rtl.gemm.icarus.ws.2x2"
    assert main(["rtl", "regress", "--cases", "3x2", "-o", str(tmp_path / "p")]) == 2
