-- Issue 11, estimators: processing type and category in every group, delayed entry, staleness,
-- and official figures by era and category. Only derived tables change (the refresh rebuilds
-- them); the case attributes themselves come in 0006. docs/methodology.md explains each rule.

-- Per case: its processing type and category, the day it came under observation (delayed
-- entry), and whether a pending case had not been seen for longer than the staleness limit.
ALTER TABLE case_durations ADD COLUMN processing VARCHAR NOT NULL DEFAULT 'regular';
ALTER TABLE case_durations ADD COLUMN category VARCHAR;
ALTER TABLE case_durations ADD COLUMN tracked_since DATE;
ALTER TABLE case_durations ADD COLUMN entry_days INTEGER NOT NULL DEFAULT 0;
ALTER TABLE case_durations ADD COLUMN stale BOOLEAN NOT NULL DEFAULT false;

-- processing: 'regular' | 'premium' | 'any' (both pooled, only when asked for).
-- category: NULL = all categories pooled; in the category groupings 'unknown' = not given.
-- n_stale: pending cases censored at a last sighting older than the staleness limit.
ALTER TABLE group_stats ADD COLUMN processing VARCHAR NOT NULL DEFAULT 'regular';
ALTER TABLE group_stats ADD COLUMN category VARCHAR;
ALTER TABLE group_stats ADD COLUMN n_stale INTEGER;

DROP TABLE case_stats;
CREATE TABLE case_stats (
    form_type          VARCHAR NOT NULL,
    office             VARCHAR NOT NULL,   -- intake office code
    processing         VARCHAR NOT NULL,   -- regular | premium (never pooled here)
    n_cases            INTEGER NOT NULL,
    n_decided          INTEGER NOT NULL,
    n_pending          INTEGER NOT NULL,
    n_stale            INTEGER,
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
    approval_rate      DOUBLE,
    approval_ci_low    DOUBLE,
    approval_ci_high   DOUBLE,
    denial_rate        DOUBLE,
    denial_ci_low      DOUBLE,
    denial_ci_high     DOUBLE,
    rfe_rate           DOUBLE,
    rfe_ci_low         DOUBLE,
    rfe_ci_high        DOUBLE,
    transfer_rate      DOUBLE,
    transfer_ci_low    DOUBLE,
    transfer_ci_high   DOUBLE,
    synthetic_share    DOUBLE NOT NULL,
    computed_at        TIMESTAMP NOT NULL,
    PRIMARY KEY (form_type, office, processing)
);

ALTER TABLE stage_stats ADD COLUMN processing VARCHAR NOT NULL DEFAULT 'regular';
ALTER TABLE stage_stats ADD COLUMN n_stale INTEGER;
ALTER TABLE outcome_curves ADD COLUMN processing VARCHAR NOT NULL DEFAULT 'regular';
ALTER TABLE outcome_curves ADD COLUMN n_stale INTEGER;
ALTER TABLE decision_trends ADD COLUMN processing VARCHAR NOT NULL DEFAULT 'regular';

-- Official figures: our category code for USCIS's subtype (NULL = all categories, or a
-- category we have no code for: see category_matched), and what the two values of `range`
-- mean in the figure's era (range_method). A legacy 2018-2022 range is the median (50%) and
-- the 93rd percentile, not an 80% figure: official_p80_days is then empty.
ALTER TABLE official_processing_times ADD COLUMN category VARCHAR;
ALTER TABLE official_processing_times ADD COLUMN category_matched BOOLEAN NOT NULL DEFAULT true;
ALTER TABLE official_processing_times ADD COLUMN office_raw VARCHAR;
ALTER TABLE official_processing_times ADD COLUMN range_method VARCHAR NOT NULL DEFAULT 'p80';
ALTER TABLE official_processing_times ADD COLUMN official_median_days DOUBLE;
ALTER TABLE official_processing_times ADD COLUMN official_p93_days DOUBLE;
ALTER TABLE official_processing_times ALTER COLUMN official_p80_days DROP NOT NULL;
ALTER TABLE official_processing_times ALTER COLUMN official_p80_value DROP NOT NULL;
ALTER TABLE official_processing_times ALTER COLUMN official_p80_unit DROP NOT NULL;
