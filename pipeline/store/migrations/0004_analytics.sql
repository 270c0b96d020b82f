-- Analytics beyond receipt -> decision: stage dates per case, every grouping, outcome shares,
-- stage-to-stage times, competing-outcome curves, decision-month trends, official processing
-- times and the observations that reveal silent updates. Every statistics table here is
-- recomputed by the refresh flow; official_processing_times and case_observations are inputs.

-- The dates each case reached a stage (first time), and the date it was last known open.
ALTER TABLE case_durations ADD COLUMN seen_until DATE;
ALTER TABLE case_durations ADD COLUMN closed_on DATE;            -- withdrawn or rejected
ALTER TABLE case_durations ADD COLUMN biometrics_on DATE;
ALTER TABLE case_durations ADD COLUMN interview_on DATE;
ALTER TABLE case_durations ADD COLUMN rfe_on DATE;
ALTER TABLE case_durations ADD COLUMN rfe_response_on DATE;
ALTER TABLE case_durations ADD COLUMN card_produced_on DATE;
ALTER TABLE case_durations ADD COLUMN card_mailed_on DATE;
ALTER TABLE case_durations ADD COLUMN had_biometrics BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE case_durations ADD COLUMN had_rfe_response BOOLEAN NOT NULL DEFAULT false;

-- The headline table (form x intake office) gains the outcome shares' intervals.
ALTER TABLE case_stats ADD COLUMN approval_ci_low DOUBLE;
ALTER TABLE case_stats ADD COLUMN approval_ci_high DOUBLE;
ALTER TABLE case_stats ADD COLUMN denial_rate DOUBLE;
ALTER TABLE case_stats ADD COLUMN denial_ci_low DOUBLE;
ALTER TABLE case_stats ADD COLUMN denial_ci_high DOUBLE;
ALTER TABLE case_stats ADD COLUMN rfe_ci_low DOUBLE;
ALTER TABLE case_stats ADD COLUMN rfe_ci_high DOUBLE;
ALTER TABLE case_stats ADD COLUMN transfer_rate DOUBLE;
ALTER TABLE case_stats ADD COLUMN transfer_ci_low DOUBLE;
ALTER TABLE case_stats ADD COLUMN transfer_ci_high DOUBLE;

-- Receipt -> decision statistics for every grouping. `grouping` says which keys are set:
--   office       form x office              (cohort NULL)
--   cohort       form x office x filing month
--   form         form, all offices          (office NULL, office_basis 'all')
--   form_cohort  form x filing month, all offices
-- office_basis: 'intake' (receipt prefix), 'current' (office holding the case, where known).
CREATE TABLE group_stats (
    grouping           VARCHAR NOT NULL,
    office_basis       VARCHAR NOT NULL,
    form_type          VARCHAR NOT NULL,
    office             VARCHAR,
    cohort             DATE,
    n_cases            INTEGER NOT NULL,
    n_decided          INTEGER NOT NULL,
    n_pending          INTEGER NOT NULL,
    suppressed         BOOLEAN NOT NULL,
    median_days        DOUBLE,
    median_ci_low      DOUBLE,
    median_ci_high     DOUBLE,
    p80_days           DOUBLE,
    p80_ci_low         DOUBLE,
    p80_ci_high        DOUBLE,
    p90_days           DOUBLE,
    p90_ci_low         DOUBLE,
    p90_ci_high        DOUBLE,
    naive_median_days  DOUBLE,
    approval_rate      DOUBLE,   -- approved / decided
    approval_ci_low    DOUBLE,
    approval_ci_high   DOUBLE,
    denial_rate        DOUBLE,   -- denied / decided
    denial_ci_low      DOUBLE,
    denial_ci_high     DOUBLE,
    rfe_rate           DOUBLE,   -- RFE issued so far / all cases
    rfe_ci_low         DOUBLE,
    rfe_ci_high        DOUBLE,
    transfer_rate      DOUBLE,   -- transferred so far / all cases
    transfer_ci_low    DOUBLE,
    transfer_ci_high   DOUBLE,
    synthetic_share    DOUBLE NOT NULL,
    computed_at        TIMESTAMP NOT NULL
);

-- Stage-to-stage times (Kaplan-Meier; cases still waiting for the end stage are censored).
CREATE TABLE stage_stats (
    segment            VARCHAR NOT NULL,   -- e.g. receipt_to_biometrics, rfe_to_response
    form_type          VARCHAR NOT NULL,
    office             VARCHAR,            -- intake office; NULL = all offices
    n_cases            INTEGER NOT NULL,   -- cases that reached the start stage
    n_decided          INTEGER NOT NULL,   -- ... and the end stage
    n_pending          INTEGER NOT NULL,   -- ... still waiting for the end stage
    suppressed         BOOLEAN NOT NULL,
    median_days        DOUBLE,
    median_ci_low      DOUBLE,
    median_ci_high     DOUBLE,
    p80_days           DOUBLE,
    p80_ci_low         DOUBLE,
    p80_ci_high        DOUBLE,
    p90_days           DOUBLE,
    p90_ci_low         DOUBLE,
    p90_ci_high        DOUBLE,
    naive_median_days  DOUBLE,
    computed_at        TIMESTAMP NOT NULL
);

-- Chance of approval / denial by day t with the other outcomes competing (Aalen-Johansen).
CREATE TABLE outcome_curves (
    form_type           VARCHAR NOT NULL,
    office              VARCHAR,            -- intake office; NULL = all offices
    day                 INTEGER NOT NULL,
    n_cases             INTEGER NOT NULL,
    n_pending           INTEGER NOT NULL,
    n_at_risk           INTEGER NOT NULL,   -- still open after `day` days
    suppressed          BOOLEAN NOT NULL,
    approved_share      DOUBLE,
    approved_ci_low     DOUBLE,
    approved_ci_high    DOUBLE,
    denied_share        DOUBLE,
    denied_ci_low       DOUBLE,
    denied_ci_high      DOUBLE,
    still_pending_share DOUBLE,
    computed_at         TIMESTAMP NOT NULL
);

-- Cases decided per decision month (a completions view, like USCIS's) and the known backlog.
CREATE TABLE decision_trends (
    form_type          VARCHAR NOT NULL,
    office             VARCHAR,            -- intake office; NULL = all offices
    decision_month     DATE NOT NULL,
    n_decided          INTEGER NOT NULL,
    n_pending_end      INTEGER NOT NULL,   -- known still pending at the month's end
    suppressed         BOOLEAN NOT NULL,
    median_days        DOUBLE,             -- of the cases decided that month
    p80_days           DOUBLE,
    approval_rate      DOUBLE,
    computed_at        TIMESTAMP NOT NULL
);

-- Official processing times as USCIS published them (imported by `timelines import-official`).
CREATE TABLE official_processing_times (
    form_type            VARCHAR NOT NULL,
    office               VARCHAR NOT NULL,   -- our office code where it maps, else USCIS's code
    subtype              VARCHAR NOT NULL,   -- USCIS's form category key ('' when none)
    publication_date     DATE NOT NULL,
    subtype_info         VARCHAR,
    official_p80_days    DOUBLE NOT NULL,    -- range[0]: 80% of completed cases took at most this
    official_p80_value   DOUBLE NOT NULL,
    official_p80_unit    VARCHAR NOT NULL,
    official_other_days  DOUBLE,             -- range[1], when given (not a minimum)
    service_request_date DATE,               -- "case inquiry date"
    imported_at          TIMESTAMP NOT NULL,
    PRIMARY KEY (form_type, office, subtype, publication_date)
);

-- What a poller saw each time it looked at a case: reveals updates without a status change.
CREATE TABLE case_observations (
    case_id        VARCHAR NOT NULL,
    observed_at    TIMESTAMP NOT NULL,
    last_modified  TIMESTAMP,
    last_stage     VARCHAR,
    PRIMARY KEY (case_id, observed_at)
);

-- Silent updates (last_modified moved, no new status) per office and week.
CREATE TABLE silent_updates (
    office             VARCHAR NOT NULL,   -- current office where known, else intake
    week               DATE NOT NULL,      -- Monday of the week the modification happened
    n_cases            INTEGER NOT NULL,   -- cases observed modified that week
    n_modifications    INTEGER NOT NULL,
    n_silent_updates   INTEGER NOT NULL,
    suppressed         BOOLEAN NOT NULL,
    computed_at        TIMESTAMP NOT NULL
);
