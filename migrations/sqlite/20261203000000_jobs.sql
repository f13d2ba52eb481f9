-- The scheduler job that runs (or last ran) each run, e.g. Slurm's `1234_7`, and the end of
-- that job's output when the run failed.
ALTER TABLE runs ADD COLUMN job TEXT;
ALTER TABLE runs ADD COLUMN log_tail TEXT;
