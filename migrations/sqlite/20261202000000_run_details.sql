-- The parts of a run's result that are read whole (the reliability diagram and the analyses:
-- attention statistics, NC1, logit fits), as JSON, and the epoch its final metrics come from.
CREATE TABLE IF NOT EXISTS run_details (
    run_id         TEXT PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
    reported_epoch INTEGER,
    reliability    TEXT NOT NULL,   -- JSON array of bins
    analyses       TEXT NOT NULL    -- JSON object
);
