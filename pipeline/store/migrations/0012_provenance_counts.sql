-- Issue 12 after issue 11's estimator tables (0011 rebuilt case_stats): the contributor and
-- verified counts on the headline table again, and on any table that lost them.
ALTER TABLE case_stats ADD COLUMN IF NOT EXISTS n_verified INTEGER;
ALTER TABLE case_stats ADD COLUMN IF NOT EXISTS n_contributors INTEGER;
ALTER TABLE group_stats ADD COLUMN IF NOT EXISTS n_verified INTEGER;
ALTER TABLE group_stats ADD COLUMN IF NOT EXISTS n_contributors INTEGER;
ALTER TABLE case_durations ADD COLUMN IF NOT EXISTS provenance VARCHAR;
ALTER TABLE case_durations ADD COLUMN IF NOT EXISTS contributor VARCHAR;
-- the verified-only variant takes group_stats' columns as they are now
DROP TABLE IF EXISTS group_stats_verified;
CREATE TABLE group_stats_verified AS SELECT * FROM group_stats LIMIT 0;
