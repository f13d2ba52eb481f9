-- Results store, PostgreSQL dialect of migrations/sqlite/20260101000000_init.sql: the same
-- tables and columns. Integers are BIGINT and reals DOUBLE PRECISION so both databases hand
-- repro the same types; `dirty` is 0/1 as in SQLite.

CREATE TABLE IF NOT EXISTS runs (
    id           TEXT PRIMARY KEY,
    stage        TEXT NOT NULL,
    config_json  TEXT NOT NULL,
    status       TEXT NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'running', 'done', 'failed', 'diverged', 'interrupted')),
    attempt      BIGINT NOT NULL DEFAULT 0,
    seed         BIGINT NOT NULL,
    owner        TEXT,
    heartbeat_at DOUBLE PRECISION,
    host         TEXT,
    device       TEXT,
    git_rev      TEXT,
    dirty        BIGINT,
    versions     TEXT,
    command      TEXT,
    created_at   DOUBLE PRECISION NOT NULL,
    started_at   DOUBLE PRECISION,
    finished_at  DOUBLE PRECISION,
    wall_s       DOUBLE PRECISION,
    error        TEXT
);
CREATE INDEX IF NOT EXISTS runs_status ON runs (status);

CREATE TABLE IF NOT EXISTS run_parents (
    run_id    TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    parent_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    PRIMARY KEY (run_id, parent_id)
);
CREATE INDEX IF NOT EXISTS run_parents_parent ON run_parents (parent_id);

-- PostgreSQL has no implicit rowid; this column keeps plan order as SQLite's does.
CREATE TABLE IF NOT EXISTS manifest_runs (
    rowid    BIGSERIAL,
    manifest TEXT NOT NULL,
    profile  TEXT NOT NULL,
    run_id   TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    stage    TEXT NOT NULL,
    labels   TEXT NOT NULL,
    seed     BIGINT NOT NULL,
    PRIMARY KEY (manifest, profile, run_id, labels)
);
CREATE INDEX IF NOT EXISTS manifest_runs_run ON manifest_runs (run_id);

CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    split  TEXT NOT NULL,
    epoch  BIGINT,
    name   TEXT NOT NULL,
    value  DOUBLE PRECISION NOT NULL,
    UNIQUE (run_id, split, epoch, name)
);

CREATE TABLE IF NOT EXISTS class_metrics (
    run_id  TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    class   BIGINT NOT NULL,
    n_train BIGINT NOT NULL,
    n_test  BIGINT NOT NULL,
    correct BIGINT NOT NULL,
    PRIMARY KEY (run_id, class)
);

CREATE TABLE IF NOT EXISTS learned_params (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    module TEXT NOT NULL,
    name   TEXT NOT NULL,
    value  DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (run_id, module, name)
);

CREATE TABLE IF NOT EXISTS artifacts (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    kind   TEXT NOT NULL,
    path   TEXT NOT NULL,
    sha256 TEXT,
    bytes  BIGINT,
    PRIMARY KEY (run_id, kind, path)
);
