-- PostgreSQL dialect of migrations/sqlite/20261202000000_run_details.sql.
CREATE TABLE IF NOT EXISTS run_details (
    run_id         TEXT PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
    reported_epoch BIGINT,
    reliability    TEXT NOT NULL,
    analyses       TEXT NOT NULL
);
