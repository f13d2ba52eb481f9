//! The results store: SQLite (embedded, the default) or PostgreSQL (shared by a cluster's
//! nodes), through sqlx's `Any` driver so that every query is written once. Every status change
//! is one statement, and a run's results land in the same transaction as its terminal status,
//! so a crash at any moment leaves each run either fully recorded or not finished.
//!
//! The API is synchronous: trainers call it from plain threads (metrics sink), and the executor
//! is thread based. Each call blocks on a small private tokio runtime.

mod copy;
mod dialect;
mod query;
mod record;

use std::future::Future;
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AnyConnection, AnyPool, Connection, Executor};

pub use copy::{copied_columns, copied_tables, CopySummary};
use dialect::Dialect;
pub use query::{ManifestSummary, MemberRun, Membership, RunDetail, RunSummary};
pub use record::{Claim, Holder, JobRef, Provenance};

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
    #[error("unsupported database URL `{0}`: use sqlite://PATH (or a file path) or postgres://USER@HOST/DB")]
    Url(String),
    #[error("no results store at {} (nothing has been run with it yet; check --db)", .0.display())]
    Missing(std::path::PathBuf),
}

/// Where a store lives, from `--db`: `sqlite://PATH`, `sqlite:PATH` or a plain path is a SQLite
/// file; `postgres://…` or `postgresql://…` a PostgreSQL database; any other scheme is an error
/// rather than a file of that name.
enum Location {
    Sqlite(std::path::PathBuf),
    Postgres(String),
}

impl Location {
    fn parse(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Location::Postgres(url.to_string()));
        }
        let url = match (url.starts_with("sqlite:"), url.split_once("://")) {
            (true, _) => url.to_string(),
            (false, Some(_)) => return Err(StoreError::Url(url.to_string())),
            (false, None) => format!("sqlite://{url}"),
        };
        let options = SqliteConnectOptions::from_str(&url)?;
        Ok(Location::Sqlite(options.get_filename().to_path_buf()))
    }
}

/// A database URL (or any text holding one, like `--db=postgres://…`) without its password, to
/// show in messages and to record in a run's provenance.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((user, host)) if user.contains(':') => {
            let name = user.split(':').next().unwrap_or_default();
            format!("{scheme}://{name}:***@{host}")
        }
        _ => url.to_string(),
    }
}

/// A SQLite file as a URL the `Any` driver parses back to the same path (it percent-decodes).
fn sqlite_file_url(path: &Path, params: &str) -> String {
    let mut url = String::from("sqlite://");
    for c in path.to_string_lossy().chars() {
        match c {
            '%' => url.push_str("%25"),
            '?' => url.push_str("%3F"),
            '#' => url.push_str("%23"),
            c => url.push(c),
        }
    }
    format!("{url}?{params}")
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
    pool: AnyPool,
    dialect: Dialect,
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

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

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
        sqlx::any::install_default_drivers();
        match Location::parse(url)? {
            Location::Postgres(url) => {
                let shown = redacted(&url);
                Self::connect(&url, Dialect::Postgres, access).map_err(|source| match source {
                    StoreError::NoSchema => StoreError::Missing(shown.into()),
                    source => StoreError::Open {
                        path: shown.into(),
                        source: Box::new(source),
                    },
                })
            }
            Location::Sqlite(path) => Self::open_sqlite(path, access),
        }
    }

    fn open_sqlite(path: std::path::PathBuf, access: Access) -> Result<Self, StoreError> {
        if access != Access::Create && !path.is_file() {
            return Err(StoreError::Missing(path));
        }
        let opened = match access {
            Access::ReadOnly => Self::connect(&sqlite_file_url(&path, "mode=ro"), Dialect::Sqlite, access)
                .or_else(|e| {
                    // Reading a WAL database needs its shared-memory file; where that cannot be
                    // created (a read-only folder) SQLite can still read the file as immutable —
                    // safe only when no write-ahead log holds transactions the file lacks.
                    let cannot_share = matches!(sqlite_code(&e), Some(SQLITE_CANTOPEN | SQLITE_READONLY));
                    if cannot_share && !has_pending_log(&path) {
                        let url = sqlite_file_url(&path, "mode=ro&immutable=true");
                        Self::connect(&url, Dialect::Sqlite, access)
                    } else {
                        Err(e)
                    }
                }),
            _ => {
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent)?;
                }
                let mode = if access == Access::Create {
                    "mode=rwc"
                } else {
                    "mode=rw"
                };
                Self::connect(&sqlite_file_url(&path, mode), Dialect::Sqlite, access)
            }
        };
        opened.map_err(|source| StoreError::Open {
            path,
            source: Box::new(source),
        })
    }

    fn connect(url: &str, dialect: Dialect, access: Access) -> Result<Self, StoreError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let settings = dialect.session_settings(access == Access::ReadOnly);
        // The pool spawns its maintenance task on the runtime.
        let _guard = rt.enter();
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(60))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    for statement in settings {
                        conn.execute(*statement).await?;
                    }
                    Ok(())
                })
            })
            .connect_lazy(url)?;
        drop(_guard);
        let store = Store { pool, dialect, rt };
        match access {
            Access::ReadOnly => {
                store.probe(url, settings)?;
                store.check_schema()?
            }
            _ => store.init(url, settings)?,
        }
        Ok(store)
    }

    fn migrator(&self) -> &'static sqlx::migrate::Migrator {
        match self.dialect {
            Dialect::Sqlite => &SQLITE_MIGRATIONS,
            Dialect::Postgres => &POSTGRES_MIGRATIONS,
        }
    }

    /// A read-only store cannot be migrated, so it must already have every migration. One that
    /// is still being created by another process (no schema yet) gets the time `init` allows.
    fn check_schema(&self) -> Result<(), StoreError> {
        let latest = self.migrator().iter().map(|m| m.version).max();
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
                // An empty PostgreSQL database is one nothing has run with yet, like a missing
                // SQLite file (it is created before repro sees it).
                Err(e) if self.dialect == Dialect::Postgres && self.dialect.is_missing_table(e) => {
                    return Err(StoreError::NoSchema)
                }
                // "no such table": an empty file, perhaps being created right now.
                Err(e) => self.dialect.is_missing_table(e),
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
    /// database at once can collide; the loser waits and finds the work done. (On PostgreSQL
    /// the migrator holds an advisory lock.)
    fn init(&self, url: &str, settings: &[&str]) -> Result<(), StoreError> {
        let mut attempt = 0;
        loop {
            let result = self
                .probe(url, settings)
                .and_then(|()| Ok(self.run(self.migrator().run(&self.pool))?));
            match result {
                Err(e) if attempt < INIT_RETRIES && self.dialect == Dialect::Sqlite && lost_init_race(&e) => {
                    attempt += 1;
                    std::thread::sleep(INIT_BACKOFF * attempt);
                }
                other => return other,
            }
        }
    }

    /// Connects once, outside the pool: the pool retries a refused connection until its
    /// acquire timeout, so an unreachable server or a file that is not a database would show
    /// as a minute's wait and a timeout instead of its own error.
    fn probe(&self, url: &str, settings: &[&str]) -> Result<(), StoreError> {
        self.run(async {
            let mut conn = AnyConnection::connect(url).await?;
            for statement in settings {
                conn.execute(*statement).await?;
            }
            conn.close().await
        })?;
        Ok(())
    }

    fn run<F: Future>(&self, fut: F) -> F::Output {
        self.rt.block_on(fut)
    }

    /// All rows of `sql` with its one bound parameter.
    fn fetch(&self, sql: &str, bound: &str) -> Result<Vec<AnyRow>, StoreError> {
        Ok(self.run(sqlx::query(sql).bind(bound).fetch_all(&self.pool))?)
    }

    /// `sqlite` or `postgres`: which database this store is.
    pub fn backend(&self) -> &'static str {
        self.dialect.name()
    }

    /// Whether this store is a file only processes on this machine may share (SQLite).
    pub fn is_local_file(&self) -> bool {
        self.dialect == Dialect::Sqlite
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
/// (SQLITE_CONSTRAINT) or a column the other process has just added (SQLITE_ERROR: ALTER TABLE
/// … ADD COLUMN has no IF NOT EXISTS); the losing migration rolls back whole, and the retry
/// finds it applied.
fn lost_init_race(err: &StoreError) -> bool {
    let migrating = matches!(err, StoreError::Migrate(_));
    match sqlite_code(err) {
        Some(code) => matches!(code, 5 | 6) || (migrating && matches!(code, 1 | 19)),
        None => false,
    }
}

const SQLITE_READONLY: i32 = 8;
const SQLITE_CANTOPEN: i32 = 14;

/// Whether `path`'s write-ahead log exists and is not empty.
fn has_pending_log(path: &Path) -> bool {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    std::fs::metadata(wal).is_ok_and(|m| m.len() > 0)
}

/// The database's own error code behind a store error (SQLite's number, PostgreSQL's SQLSTATE).
fn db_code(err: &StoreError) -> Option<String> {
    let db_err = match err {
        StoreError::Sql(sqlx::Error::Database(e)) => e,
        StoreError::Migrate(
            sqlx::migrate::MigrateError::Execute(sqlx::Error::Database(e))
            | sqlx::migrate::MigrateError::ExecuteMigration(sqlx::Error::Database(e), _),
        ) => e,
        _ => return None,
    };
    db_err.code().map(|c| c.into_owned())
}

/// The primary SQLite result code behind a store error, if SQLite gave one.
fn sqlite_code(err: &StoreError) -> Option<i32> {
    db_code(err).and_then(|c| c.parse::<i32>().ok()).map(|c| c & 0xff)
}

#[cfg(test)]
mod tests {
    use super::redacted;

    #[test]
    fn passwords_are_left_out_of_urls_and_arguments() {
        for (given, shown) in [
            (
                "postgres://me:secret@db:5432/repro",
                "postgres://me:***@db:5432/repro",
            ),
            ("--db=postgres://me:s3@db/r", "--db=postgres://me:***@db/r"),
            ("postgres://me@db/repro", "postgres://me@db/repro"),
            ("results/a@b.sqlite", "results/a@b.sqlite"),
            ("sqlite:///data/x@y:z.sqlite", "sqlite:///data/x@y:z.sqlite"),
        ] {
            assert_eq!(redacted(given), shown);
        }
    }
}
