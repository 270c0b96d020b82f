-- Cases: one row per anonymized case. No receipt number, no names, no free text.
CREATE TABLE cases (
    case_id        VARCHAR PRIMARY KEY,      -- keyed pseudonym (HMAC of the receipt)
    form_type      VARCHAR NOT NULL,         -- I-485, I-765, ...
    intake_office  VARCHAR NOT NULL,         -- office code from the receipt prefix
    current_office VARCHAR,                  -- office that has the case now, when known
    fiscal_year    INTEGER,                  -- from the receipt (legacy) or the receipt date
    received_date  DATE NOT NULL,
    premium        BOOLEAN,
    sources        VARCHAR[] NOT NULL,       -- case_status_api, myuscis, ...
    first_seen     TIMESTAMP NOT NULL,
    last_seen      TIMESTAMP NOT NULL,       -- pending cases are censored here
    last_modified  TIMESTAMP,                -- USCIS's own last-update stamp
    synthetic      BOOLEAN NOT NULL DEFAULT false
);

-- Dated status events; (case, date, stage) is one event whatever the wording or source.
CREATE TABLE status_events (
    case_id     VARCHAR NOT NULL,
    event_date  DATE NOT NULL,
    stage       VARCHAR NOT NULL,
    title       VARCHAR NOT NULL,
    source      VARCHAR NOT NULL,
    run_id      BIGINT,
    PRIMARY KEY (case_id, event_date, stage)
);

CREATE SEQUENCE run_id_seq START 1;

-- Every flow run that wrote here, with its counts; the health page reads it.
CREATE TABLE ingest_runs (
    run_id       BIGINT PRIMARY KEY,
    flow         VARCHAR NOT NULL,
    started_at   TIMESTAMP NOT NULL,
    finished_at  TIMESTAMP,
    status       VARCHAR NOT NULL,
    n_read       INTEGER NOT NULL DEFAULT 0,
    n_stored     INTEGER NOT NULL DEFAULT 0,
    n_rejected   INTEGER NOT NULL DEFAULT 0,
    n_new_cases  INTEGER NOT NULL DEFAULT 0,
    n_new_events INTEGER NOT NULL DEFAULT 0,
    message      VARCHAR
);

-- Rejected records: the anonymized attempt and why, never the raw payload.
CREATE TABLE quarantine (
    fingerprint VARCHAR PRIMARY KEY,  -- keyed hash of the input, so re-ingesting adds nothing
    run_id      BIGINT,
    origin      VARCHAR NOT NULL,     -- where it came from, receipt numbers scrubbed
    case_id     VARCHAR,
    reasons     VARCHAR[] NOT NULL,
    attempt     JSON,
    created_at  TIMESTAMP NOT NULL
);

-- Materialized statistics, recomputed by the refresh flow.
CREATE TABLE case_stats (
    form_type     VARCHAR NOT NULL,
    office        VARCHAR NOT NULL,
    n_cases       INTEGER NOT NULL,
    n_decided     INTEGER NOT NULL,
    n_pending     INTEGER NOT NULL,
    suppressed    BOOLEAN NOT NULL,
    median_days   DOUBLE,
    p80_days      DOUBLE,
    computed_at   TIMESTAMP NOT NULL
);
