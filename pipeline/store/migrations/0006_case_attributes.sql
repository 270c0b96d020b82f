-- Issue 11: case attributes the estimators group and truncate by (docs/data-model.md).
--   category       canonical per-form category code (pipeline/parse/categories.py), NULL = not given
--   processing     'regular' | 'premium'; premium only when an input said so (never NULL)
--   tracked_since  the day the case came under observation while pending (delayed entry);
--                  NULL = observed from the receipt date (no delayed entry)
--   last_checked   the day the case's status was last known; pending cases are censored here
--   received_estimated  the received date was estimated from a legacy receipt number (a status
--                  snapshot without one), not given; a given date always replaces an estimate
-- Merge rule (pipeline/prepare/merge.py, store/load.py): category first non-NULL (a conflict is
-- refused), processing premium if any input said premium, tracked_since the earliest date given
-- (NULL only when no input gives one), last_checked the latest.
ALTER TABLE cases ADD COLUMN category VARCHAR;
ALTER TABLE cases ADD COLUMN processing VARCHAR DEFAULT 'regular';
ALTER TABLE cases ADD COLUMN tracked_since DATE;
ALTER TABLE cases ADD COLUMN last_checked DATE;
ALTER TABLE cases ADD COLUMN received_estimated BOOLEAN DEFAULT false;
UPDATE cases SET processing = CASE WHEN premium THEN 'premium' ELSE 'regular' END,
                 last_checked = CAST(last_seen AS DATE), received_estimated = false;
