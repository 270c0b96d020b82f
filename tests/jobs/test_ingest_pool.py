"""Ingest prepared by a pool of processes stores exactly what one process stores."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from pipeline.jobs import ingest as ingest_job
from pipeline.settings import Secret, Settings
from pipeline.sources.sample import write_sample
from tests.jobs.test_ingest_store import table_contents

pytestmark = pytest.mark.slow
KEY = "k" * 64


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    out = tmp_path / "inputs"
    write_sample(out, 1200, seed=21, as_of=date(2025, 6, 1), per_file=250)
    (out / "broken.json").write_text('{"case_status": ')
    # the same receipt again in a later file, with one more event: merged, not duplicated
    first = json.loads((out / "case_status_api-synthetic-0001.jsonl").read_text().splitlines()[0])
    first["case_status"]["hist_case_status"] = [
        *(first["case_status"]["hist_case_status"] or []),
        {"date": "2025-05-30", "completed_text_en": "We scheduled an interview for your case."},
    ]
    (out / "zz-later.jsonl").write_text(json.dumps(first) + "\n")
    return out


def test_a_pool_of_processes_stores_the_same_as_one_process(
    tmp_path: Path, inputs: Path
) -> None:
    files = ingest_job.discover_inputs([inputs])
    key = Secret(KEY)
    alone = Settings(tmp_path / "alone", pseudonym_key=key)
    pooled = Settings(tmp_path / "pooled", pseudonym_key=key)

    one = ingest_job.ingest_files(alone, files, workers=1, chunk_size=200)
    many = ingest_job.ingest_files(pooled, files, workers=2, chunk_size=200)

    assert (many.n_read, many.n_stored, many.n_new_cases, many.n_new_events) == (
        one.n_read, one.n_stored, one.n_new_cases, one.n_new_events)
    assert one.n_read == 1202 and one.n_new_cases == 1200
    assert [r.origin for r in many.rejections] == [r.origin for r in one.rejections]
    # one rejection (broken.json), named by an opaque reference, never by its file name
    assert len(one.rejections) == 1 and "broken" not in one.rejections[0].origin
    assert table_contents(pooled.database_path) == table_contents(alone.database_path)
    again = ingest_job.ingest_files(pooled, files, workers=2, chunk_size=200)
    assert (again.n_new_cases, again.n_new_events) == (0, 0)
