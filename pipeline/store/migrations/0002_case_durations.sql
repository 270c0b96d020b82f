-- One row per case: receipt -> first decision, or censored at the last date it was seen.
CREATE TABLE case_durations (
    case_id         VARCHAR PRIMARY KEY,
    form_type       VARCHAR NOT NULL,
    intake_office   VARCHAR NOT NULL,
    current_office  VARCHAR NOT NULL,
    received_date   DATE NOT NULL,
    received_month  DATE NOT NULL,     -- filing cohort
    decided_on      DATE,              -- first approval (or card) or denial
    decision_month  DATE,
    outcome         VARCHAR NOT NULL,  -- approved | denied | withdrawn | pending
    duration_days   INTEGER NOT NULL,  -- to the decision, or to the censoring date
    decided         BOOLEAN NOT NULL,
    had_rfe         BOOLEAN NOT NULL,
    had_interview   BOOLEAN NOT NULL,
    transferred     BOOLEAN NOT NULL,
    premium         BOOLEAN,
    synthetic       BOOLEAN NOT NULL
);

-- Statistics per form type x office, Kaplan-Meier based (replaces the first draft).
DROP TABLE case_stats;
CREATE TABLE case_stats (
    form_type          VARCHAR NOT NULL,
    office             VARCHAR NOT NULL,   -- intake office code
    n_cases            INTEGER NOT NULL,
    n_decided          INTEGER NOT NULL,
    n_pending          INTEGER NOT NULL,
    suppressed         BOOLEAN NOT NULL,   -- fewer than k cases: publish no figures
    median_days        DOUBLE,
    median_ci_low      DOUBLE,
    median_ci_high     DOUBLE,
    p80_days           DOUBLE,
    p80_ci_low         DOUBLE,
    p80_ci_high        DOUBLE,
    p90_days           DOUBLE,
    p90_ci_low         DOUBLE,
    p90_ci_high        DOUBLE,
    naive_median_days  DOUBLE,             -- finished cases only, for contrast
    approval_rate      DOUBLE,
    rfe_rate           DOUBLE,
    synthetic_share    DOUBLE NOT NULL,
    computed_at        TIMESTAMP NOT NULL,
    PRIMARY KEY (form_type, office)
);
