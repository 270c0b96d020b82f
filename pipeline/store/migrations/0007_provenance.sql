-- Provenance (issue 12): where each case's data comes from, so that self-reported claims
-- never change verified data and the figures can be shown for verified cases only.
--   verified       answers of the official Case Status API, polled by us
--   self_reported  the public path: a myUSCIS paste, a typed timeline, a public CSV
--   operator       `timelines ingest` of files an operator chose; provenance_source names them
ALTER TABLE cases ADD COLUMN provenance VARCHAR DEFAULT 'operator';
ALTER TABLE cases ADD COLUMN provenance_source VARCHAR;
ALTER TABLE status_events ADD COLUMN provenance VARCHAR DEFAULT 'operator';

UPDATE cases SET provenance = 'self_reported', provenance_source = 'submission'
WHERE case_id IN (SELECT case_id FROM submission_cases WHERE NOT backed);
UPDATE cases SET provenance = 'verified', provenance_source = 'case_status_api'
WHERE case_id IN (SELECT case_id FROM poll_outcomes WHERE outcome = 'ok');
UPDATE cases SET provenance_source = sources[1] WHERE provenance_source IS NULL;
UPDATE status_events SET provenance = 'self_reported'
WHERE (case_id, event_date, stage) IN (
    SELECT (case_id, event_date, stage) FROM submission_events WHERE NOT backed);
UPDATE status_events SET provenance = 'verified'
WHERE run_id IN (SELECT run_id FROM ingest_runs WHERE flow = 'poll');

-- Self-reported claims about a case that has verified or operator data, or that disagree with
-- it: kept apart here, never merged, never published, never told to the submitter.
CREATE TABLE claims_apart (
    submission_id VARCHAR NOT NULL,
    case_id       VARCHAR NOT NULL,
    reason        VARCHAR NOT NULL,     -- verified_case | operator_case | form_conflict
    attempt       JSON,                 -- the anonymized claim (form, offices, dates, stages)
    created_at    TIMESTAMP NOT NULL,
    PRIMARY KEY (submission_id, case_id)
);

-- Who stands behind each case for the contributor rule: a self-reported case counts once per
-- submission (its contributor); a verified or operator case is its own contributor.
ALTER TABLE case_durations ADD COLUMN provenance VARCHAR;
ALTER TABLE case_durations ADD COLUMN contributor VARCHAR;

ALTER TABLE group_stats ADD COLUMN n_verified INTEGER;
ALTER TABLE group_stats ADD COLUMN n_contributors INTEGER;
ALTER TABLE case_stats ADD COLUMN n_verified INTEGER;
ALTER TABLE case_stats ADD COLUMN n_contributors INTEGER;

-- The same statistics over verified cases only (rebuilt by every refresh).
CREATE TABLE group_stats_verified AS SELECT * FROM group_stats LIMIT 0;
