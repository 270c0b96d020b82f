-- Issue 13: cases and status_events without PRIMARY KEY. DuckDB keeps a primary key in an
-- ART index that every insert updates in memory: a 1M-history load took 30 s and 1.1 GB in
-- its upserts alone, against 2.5 s and 0.4 GB for the same rows in tables without it. The
-- key stays a key: the only writer of these tables (pipeline.store.load.store_chunk) adds a
-- case or an event only where none with its key is stored, and tests/store/test_keys.py
-- checks it after every kind of load. The columns and defaults are as they were.
CREATE TABLE cases_keyed_by_load (
    case_id            VARCHAR NOT NULL,
    form_type          VARCHAR NOT NULL,
    intake_office      VARCHAR NOT NULL,
    current_office     VARCHAR,
    fiscal_year        INTEGER,
    received_date      DATE NOT NULL,
    premium            BOOLEAN,
    sources            VARCHAR[] NOT NULL,
    first_seen         TIMESTAMP NOT NULL,
    last_seen          TIMESTAMP NOT NULL,
    last_modified      TIMESTAMP,
    synthetic          BOOLEAN NOT NULL DEFAULT false,
    category           VARCHAR,
    processing         VARCHAR DEFAULT 'regular',
    tracked_since      DATE,
    last_checked       DATE,
    received_estimated BOOLEAN DEFAULT false,
    provenance         VARCHAR DEFAULT 'operator',
    provenance_source  VARCHAR
);
INSERT INTO cases_keyed_by_load BY NAME SELECT * FROM cases;
DROP TABLE cases;
ALTER TABLE cases_keyed_by_load RENAME TO cases;

CREATE TABLE status_events_keyed_by_load (
    case_id    VARCHAR NOT NULL,
    event_date DATE NOT NULL,
    stage      VARCHAR NOT NULL,
    title      VARCHAR NOT NULL,
    source     VARCHAR NOT NULL,
    run_id     BIGINT,
    provenance VARCHAR DEFAULT 'operator'
);
INSERT INTO status_events_keyed_by_load BY NAME SELECT * FROM status_events;
DROP TABLE status_events;
ALTER TABLE status_events_keyed_by_load RENAME TO status_events;
