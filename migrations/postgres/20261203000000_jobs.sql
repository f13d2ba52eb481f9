-- The scheduler job that runs (or last ran) each run (Slurm: `1234_7`), the file its output goes
-- to, and the end of that output when the run failed.
ALTER TABLE runs ADD COLUMN job TEXT;
ALTER TABLE runs ADD COLUMN job_log TEXT;
ALTER TABLE runs ADD COLUMN log_tail TEXT;
