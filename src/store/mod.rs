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

pub use query::{ManifestSummary, MemberRun, RunDetail};
pub use record::{Claim, Provenance};

/// Default database, relative to the working directory.
pub const DEFAULT_DB: &str = "sqlite://results/repro.sqlite";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
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

impl Store {
    /// Opens (creating if missing) and migrates the database at `url` (`sqlite://path` or a path):
    /// for commands that write.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_with(url, true)
    }

    /// Opens an existing database: for commands that only read, which must not leave an empty
    /// store behind a mistyped `--db`.
    pub fn open_existing(url: &str) -> Result<Self, StoreError> {
        Self::open_with(url, false)
    }

    fn open_with(url: &str, create: bool) -> Result<Self, StoreError> {
        let url = sqlite_url(url)?;
        let options = SqliteConnectOptions::from_str(&url)?;
        let path = Path::new(options.get_filename()).to_path_buf();
        if !create && !path.is_file() {
            return Err(StoreError::Missing(path));
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let options = options
            .create_if_missing(create)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            // Several `repro` processes share one file; writers wait rather than fail.
            .busy_timeout(Duration::from_secs(30));
        if let Some(parent) = Path::new(options.get_filename()).parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent)?;
            }
        }
        // The pool spawns its maintenance task on the runtime.
        let _guard = rt.enter();
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(60))
            .connect_lazy_with(options);
        drop(_guard);
        let store = Store { pool, rt };
        store.init()?;
        Ok(store)
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
                .and_then(|()| Ok(self.run(sqlx::migrate!("./migrations").run(&self.pool))?));
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

/// Errors a process can get from racing another one through `init`: SQLITE_BUSY or
/// SQLITE_LOCKED, and, from the migrator, the other process's row in `_sqlx_migrations`
/// (SQLITE_CONSTRAINT); the losing migration rolls back whole.
fn lost_init_race(err: &StoreError) -> bool {
    let (db_err, migrating) = match err {
        StoreError::Sql(sqlx::Error::Database(e)) => (e, false),
        StoreError::Migrate(sqlx::migrate::MigrateError::Execute(sqlx::Error::Database(e))) => (e, true),
        _ => return false,
    };
    let code = db_err.code().and_then(|c| c.parse::<i32>().ok()).unwrap_or(0) & 0xff;
    matches!(code, 5 | 6) || (migrating && code == 19)
}
