-- Polling the official Case Status API. Receipt numbers never come here: they live only in
-- the registry file (TIMELINES_HOME/registry.sqlite); these tables hold the keyed pseudonym.

-- Every outcome of every poll of every tracked case, for the health page.
CREATE TABLE poll_outcomes (
    run_id       BIGINT NOT NULL,      -- the poll run (ingest_runs.run_id, flow 'poll')
    case_id      VARCHAR NOT NULL,     -- keyed pseudonym, never the receipt number
    polled_at    TIMESTAMP NOT NULL,
    outcome      VARCHAR NOT NULL,     -- ok | not_found | invalid | error | quota
    http_status  INTEGER,              -- last HTTP status seen; 0 = no answer (timeout, refused)
    reason       VARCHAR,              -- USCIS's message or ours; receipt numbers scrubbed
    new_events   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, case_id)
);

-- Requests sent to the API per day and answer status: USCIS asks for five consecutive days of
-- sandbox traffic with 200 and 4xx answers before it grants production access.
CREATE TABLE api_traffic (
    day          DATE NOT NULL,        -- calendar day in the API's quota zone
    api          VARCHAR NOT NULL,     -- sandbox | production | emulator | other host name
    endpoint     VARCHAR NOT NULL,     -- token | case_status
    status       INTEGER NOT NULL,     -- HTTP status; 0 = no answer (timeout, refused)
    n_requests   INTEGER NOT NULL,
    PRIMARY KEY (day, api, endpoint, status)
);
