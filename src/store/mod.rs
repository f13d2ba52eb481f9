//! The results store (SQLite through sqlx). Every status change is one statement, and a run's
//! results land in the same transaction as its terminal status, so a crash at any moment leaves
//! each run either fully recorded or not finished.
//!
//! The API is synchronous: trainers call it from plain threads (metrics sink), and the executor
//! is thread based. Each call blocks on a small private tokio runtime.

mod query;
mod record;

use std::future::Future;
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

pub use query::{ManifestSummary, MemberRun, Membership, RunDetail, RunSummary};
pub use record::{Claim, Holder, Provenance};

/// Default database, relative to the working directory.
pub const DEFAULT_DB: &str = "sqlite://results/repro.sqlite";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("results store {}", path.display())]
    Open {
        path: std::path::PathBuf,
        source: Box<StoreError>,
    },
    #[error("not a repro results store: it has none of repro's tables")]
    NoSchema,
    #[error("the store was written by an older repro; a command that records runs (repro run) upgrades it")]
    Outdated,
    #[error("{0}")]
    Sql(#[from] sqlx::Error),
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("no run matches `{0}`")]
    NotFound(String),
    #[error("`{0}` matches several runs: {1}")]
    Ambiguous(String, String),
    #[error("run {0} is no longer owned by this process (marked interrupted by another)")]
    LostClaim(String),
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error("unsupported database URL `{0}`: results are stored in SQLite (sqlite://PATH, or a file path)")]
    Url(String),
    #[error("no results store at {} (nothing has been run with it yet; check --db)", .0.display())]
    Missing(std::path::PathBuf),
}

/// `sqlite://PATH`, `sqlite:PATH` or a plain path as a sqlx SQLite URL; any other scheme is an
/// error rather than a file of that name.
fn sqlite_url(url: &str) -> Result<String, StoreError> {
    if url.starts_with("sqlite:") {
        return Ok(url.to_string());
    }
    match url.split_once("://") {
        Some(_) => Err(StoreError::Url(url.to_string())),
        None => Ok(format!("sqlite://{url}")),
    }
}

impl crate::exit::ExitStatus for StoreError {
    fn exit_code(&self) -> i32 {
        match self {
            StoreError::NotFound(_)
            | StoreError::Ambiguous(..)
            | StoreError::Url(_)
            | StoreError::Missing(_) => crate::exit::INPUT,
            StoreError::Open { source, .. } => source.exit_code(),
            _ => crate::exit::FAILURE,
        }
    }
}

impl From<crate::result::UnknownStatus> for StoreError {
    fn from(e: crate::result::UnknownStatus) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}

/// Retries of a lost initialisation race, backing off linearly: 20 tries up to 4.2 s in all,
/// far more than the winner needs to migrate a fresh file.
const INIT_RETRIES: u32 = 20;
const INIT_BACKOFF: Duration = Duration::from_millis(20);

pub struct Store {
    pool: SqlitePool,
    rt: tokio::runtime::Runtime,
}

pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// How a command uses the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Commands that record runs: a missing store is created.
    Create,
    /// Commands that change an existing store (`rm`).
    Existing,
    /// Commands that only read: nothing is written, so a store on a read-only disk or owned
    /// by another user can still be read.
    ReadOnly,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

impl Store {
    /// Opens (creating if missing) and migrates the database at `url` (`sqlite://path` or a path):
    /// for commands that record runs.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_with(url, Access::Create)
    }

    /// Opens an existing database to change it: a mistyped `--db` must not leave an empty store.
    pub fn open_existing(url: &str) -> Result<Self, StoreError> {
        Self::open_with(url, Access::Existing)
    }

    /// Opens an existing database without writing to it.
    pub fn open_read_only(url: &str) -> Result<Self, StoreError> {
        Self::open_with(url, Access::ReadOnly)
    }

    fn open_with(url: &str, access: Access) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(&sqlite_url(url)?)?;
        let path = Path::new(options.get_filename()).to_path_buf();
        if access != Access::Create && !path.is_file() {
            return Err(StoreError::Missing(path));
        }
        let opened = match access {
            Access::ReadOnly => Self::connect(options.clone().read_only(true), access).or_else(|e| {
                // Reading a WAL database needs its shared-memory file; where that cannot be
                // created (a read-only folder) SQLite can still read the file as immutable —
                // safe only when no write-ahead log holds transactions the file lacks.
                let cannot_share = matches!(sqlite_code(&e), Some(SQLITE_CANTOPEN | SQLITE_READONLY));
                if cannot_share && !has_pending_log(&path) {
                    Self::connect(options.read_only(true).immutable(true), access)
                } else {
                    Err(e)
                }
            }),
            _ => {
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent)?;
                }
                let options = options
                    .create_if_missing(access == Access::Create)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal);
                Self::connect(options, access)
            }
        };
        opened.map_err(|source| StoreError::Open {
            path,
            source: Box::new(source),
        })
    }

    fn connect(options: SqliteConnectOptions, access: Access) -> Result<Self, StoreError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let options = options
            .foreign_keys(true)
            // Several `repro` processes share one file; writers wait rather than fail.
            .busy_timeout(Duration::from_secs(30));
        // The pool spawns its maintenance task on the runtime.
        let _guard = rt.enter();
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(60))
            .connect_lazy_with(options);
        drop(_guard);
        let store = Store { pool, rt };
        match access {
            Access::ReadOnly => store.check_schema()?,
            _ => store.init()?,
        }
        Ok(store)
    }

    /// A read-only store cannot be migrated, so it must already have every migration. One that
    /// is still being created by another process (no schema yet) gets the time `init` allows.
    fn check_schema(&self) -> Result<(), StoreError> {
        let latest = MIGRATOR.iter().map(|m| m.version).max();
        let mut attempt = 0;
        loop {
            let applied: Result<Option<i64>, StoreError> = self
                .run(
                    sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success")
                        .fetch_one(&self.pool),
                )
                .map_err(StoreError::from);
            let unfinished = match &applied {
                Ok(applied) => *applied < latest,
                // "no such table": an empty file, perhaps being created right now.
                Err(e) => sqlite_code(e) == Some(SQLITE_ERROR),
            };
            match applied {
                Ok(_) if !unfinished => return Ok(()),
                _ if unfinished && attempt < INIT_RETRIES => {
                    attempt += 1;
                    std::thread::sleep(INIT_BACKOFF * attempt);
                }
                Ok(_) => return Err(StoreError::Outdated),
                Err(_) if unfinished => return Err(StoreError::NoSchema),
                Err(e) => return Err(e),
            }
        }
    }

    /// Switching a fresh file to WAL and migrating it are not covered by the busy timeout
    /// everywhere, and sqlx takes no migration lock on SQLite, so two processes opening a new
    /// database at once can collide; the loser waits and finds the work done.
    fn init(&self) -> Result<(), StoreError> {
        let mut attempt = 0;
        loop {
            // The first connection runs the WAL pragma; it goes back to the pool inside the
            // runtime, which returning a connection needs.
            let result = self
                .run(async { self.pool.acquire().await.map(drop) })
                .map_err(StoreError::from)
                .and_then(|()| Ok(self.run(MIGRATOR.run(&self.pool))?));
            match result {
                Err(e) if attempt < INIT_RETRIES && lost_init_race(&e) => {
                    attempt += 1;
                    std::thread::sleep(INIT_BACKOFF * attempt);
                }
                other => return other,
            }
        }
    }

    fn run<F: Future>(&self, fut: F) -> F::Output {
        self.rt.block_on(fut)
    }
}

/// Closing the connections before the process ends lets the last one checkpoint and delete the
/// write-ahead log; left behind, it would make a later read-only open (a read-only folder)
/// fail, since reading a WAL that needs recovery needs write access.
impl Drop for Store {
    fn drop(&mut self) {
        self.rt.block_on(self.pool.close());
    }
}

/// Errors a process can get from racing another one through `init`: SQLITE_BUSY or
/// SQLITE_LOCKED, and, from the migrator, the other process's row in `_sqlx_migrations`
/// (SQLITE_CONSTRAINT); the losing migration rolls back whole.
fn lost_init_race(err: &StoreError) -> bool {
    let migrating = matches!(err, StoreError::Migrate(_));
    match sqlite_code(err) {
        Some(code) => matches!(code, 5 | 6) || (migrating && code == 19),
        None => false,
    }
}

const SQLITE_ERROR: i32 = 1;
const SQLITE_READONLY: i32 = 8;
const SQLITE_CANTOPEN: i32 = 14;

/// Whether `path`'s write-ahead log exists and is not empty.
fn has_pending_log(path: &Path) -> bool {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    std::fs::metadata(wal).is_ok_and(|m| m.len() > 0)
}

/// The primary SQLite result code behind a store error, if SQLite gave one.
fn sqlite_code(err: &StoreError) -> Option<i32> {
    let db_err = match err {
        StoreError::Sql(sqlx::Error::Database(e)) => e,
        StoreError::Migrate(sqlx::migrate::MigrateError::Execute(sqlx::Error::Database(e))) => e,
        _ => return None,
    };
    db_err
        .code()
        .and_then(|c| c.parse::<i32>().ok())
        .map(|c| c & 0xff)
}
