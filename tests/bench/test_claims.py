"""bench/claims.json: the seeds' claims the report tests, one record each, read by ``bench.report``.

The claims are data so that a claim's wording can change without touching code; these tests keep the
data and the code in step: every record is complete and names a measurement the report has, with the
templates that measurement fills, and every template is filled on the committed sweep results.
"""

from __future__ import annotations

import dataclasses
import json
import string

import pytest

from bench import report
from bench.store import DEFAULT_RESULTS, export_rows, load_records, synth_rows


def _records() -> list[dict]:
    return json.loads(report.CLAIMS_FILE.read_text())["claims"]


@pytest.mark.parametrize("record", _records(), ids=lambda r: r.get("id", "?"))
def test_every_record_has_its_fields_and_a_known_measurement(record):
    fields = {f.name for f in dataclasses.fields(report.Claim)}
    assert set(record) == fields
    assert record["source"] and record["statement"] and record["id"]
    assert all(isinstance(record[k], str) for k in ("source", "statement", "scope", "measurement", "missing"))
    assert isinstance(record["notes"], list) and all(isinstance(n, str) and n for n in record["notes"])
    assert record["measurement"] in report.MEASUREMENTS
    assert set(record["text"]) == report.MEASUREMENTS[record["measurement"]].texts


def test_claims_load_with_unique_ids_and_every_measurement_is_used():
    claims = report.load_claims()
    assert len({c.id for c in claims}) == len(claims) == len(_records())
    assert {c.measurement for c in claims} == set(report.MEASUREMENTS)


def test_notes_and_missing_lines_are_plain_text():
    # only ``text`` templates are formatted; a brace elsewhere would be printed as it is, a sign of a mix-up
    for claim in report.load_claims():
        for line in (claim.source, claim.statement, claim.scope, claim.missing, *claim.notes):
            assert not any(field for _, field, _, _ in string.Formatter().parse(line) if field is not None), line


@pytest.mark.parametrize("change, message", [
    (lambda r: r.update(measurement="no_such"), r"claim 0 \(mao\): unknown measurement 'no_such'"),
    (lambda r: r.pop("notes"), r"claim 0 \(mao\): lacks \['notes'\], has unknown \[\]; a claim has exactly"),
    (lambda r: r["text"].pop("verdict"), r"claim 0 \(mao\): text has .*; memory_references fills"),
])
def test_a_bad_record_is_an_error_naming_it(tmp_path, change, message):
    records = _records()
    change(records[0])
    path = tmp_path / "claims.json"
    path.write_text(json.dumps({"claims": records}))
    with pytest.raises(ValueError, match=message):
        report.load_claims(path)


@pytest.mark.skipif(not DEFAULT_RESULTS.exists(), reason="needs the committed sweep results")
def test_every_claim_is_measured_on_the_committed_results():
    records = load_records(DEFAULT_RESULTS)
    res = report.Results(export_rows(records), synth_rows(records))
    lines = report.claims_section(res, res.arrays[0])
    for claim in report.load_claims():
        assert report.MEASUREMENTS[claim.measurement].run(res, res.arrays[0], claim.text)
        assert f"**{claim.source} — {claim.statement}**" in "\n".join(lines)
    assert not any("{" in line for line in lines)  # every template field was filled
