-- Results store. Times are unix seconds (REAL). IF NOT EXISTS lets two processes that race on a
-- fresh database both get through migration.

CREATE TABLE IF NOT EXISTS runs (
    id           TEXT PRIMARY KEY,
    stage        TEXT NOT NULL,
    config_json  TEXT NOT NULL,
    status       TEXT NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'running', 'done', 'failed', 'diverged', 'interrupted')),
    attempt      INTEGER NOT NULL DEFAULT 0,
    seed         INTEGER NOT NULL,
    owner        TEXT,            -- host:pid of the process running it, while running
    heartbeat_at REAL,
    host         TEXT,
    device       TEXT,
    git_rev      TEXT,
    dirty        INTEGER,
    versions     TEXT,            -- JSON object: crate, backend...
    command      TEXT,
    created_at   REAL NOT NULL,
    started_at   REAL,
    finished_at  REAL,
    wall_s       REAL,
    error        TEXT
);
CREATE INDEX IF NOT EXISTS runs_status ON runs (status);

CREATE TABLE IF NOT EXISTS run_parents (
    run_id    TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    parent_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    PRIMARY KEY (run_id, parent_id)
);
CREATE INDEX IF NOT EXISTS run_parents_parent ON run_parents (parent_id);

-- Which manifest (under which profile) a run belongs to, at which table coordinates.
CREATE TABLE IF NOT EXISTS manifest_runs (
    manifest TEXT NOT NULL,
    profile  TEXT NOT NULL,
    run_id   TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    stage    TEXT NOT NULL,
    labels   TEXT NOT NULL,      -- JSON object: axis → value label
    seed     INTEGER NOT NULL,
    PRIMARY KEY (manifest, profile, run_id, labels)
);
CREATE INDEX IF NOT EXISTS manifest_runs_run ON manifest_runs (run_id);

-- epoch NULL: final metrics, written together with the run's terminal status.
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    split  TEXT NOT NULL,
    epoch  INTEGER,
    name   TEXT NOT NULL,
    value  REAL NOT NULL,
    UNIQUE (run_id, split, epoch, name)
);

CREATE TABLE IF NOT EXISTS class_metrics (
    run_id  TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    class   INTEGER NOT NULL,
    n_train INTEGER NOT NULL,
    n_test  INTEGER NOT NULL,
    correct INTEGER NOT NULL,
    PRIMARY KEY (run_id, class)
);

CREATE TABLE IF NOT EXISTS learned_params (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    module TEXT NOT NULL,
    name   TEXT NOT NULL,
    value  REAL NOT NULL,
    PRIMARY KEY (run_id, module, name)
);

CREATE TABLE IF NOT EXISTS artifacts (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    kind   TEXT NOT NULL,
    path   TEXT NOT NULL,
    sha256 TEXT,
    bytes  INTEGER,
    PRIMARY KEY (run_id, kind, path)
);
