-- Community submissions: consent and lineage, so that a submission can be deleted with
-- everything derived from it. No receipt number, no raw input, no deletion code (its hash).

CREATE TABLE submissions (
    submission_id       VARCHAR PRIMARY KEY,
    deletion_hash       VARCHAR NOT NULL UNIQUE,  -- SHA-256 of the one-time deletion code
    kind                VARCHAR NOT NULL,         -- myuscis, case_status_api, typed_form, csv_import, ...
    consent_version     VARCHAR NOT NULL,
    consent_text_sha256 VARCHAR NOT NULL,
    consented_at        TIMESTAMP NOT NULL,
    submitted_at        TIMESTAMP NOT NULL,
    ingested_at         TIMESTAMP NOT NULL,
    run_id              BIGINT,
    state               VARCHAR NOT NULL,         -- stored | partly_stored | quarantined
    n_cases             INTEGER NOT NULL,
    n_stored            INTEGER NOT NULL,
    n_quarantined       INTEGER NOT NULL
);

-- Which cases and events each submission brought. `backed` is true when something other
-- than submissions (polling, a file ingest) already had the row: deleting the submission
-- then leaves it in place.
CREATE TABLE submission_cases (
    submission_id VARCHAR NOT NULL,
    case_id       VARCHAR NOT NULL,
    backed        BOOLEAN NOT NULL,
    PRIMARY KEY (submission_id, case_id)
);

CREATE TABLE submission_events (
    submission_id VARCHAR NOT NULL,
    case_id       VARCHAR NOT NULL,
    event_date    DATE NOT NULL,
    stage         VARCHAR NOT NULL,
    backed        BOOLEAN NOT NULL,
    PRIMARY KEY (submission_id, case_id, event_date, stage)
);
