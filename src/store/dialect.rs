//! The few places where SQLite and PostgreSQL need different SQL. Everything else is written
//! once, in the syntax both accept (`$1` parameters, `ON CONFLICT`, `RETURNING`, `CAST`).

use super::{db_code, sqlite_code, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    pub(super) fn name(self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        }
    }

    /// Statements run on every new connection.
    pub(super) fn session_settings(self, read_only: bool) -> &'static [&'static str] {
        match (self, read_only) {
            // Several `repro` processes share one file; writers wait rather than fail.
            (Dialect::Sqlite, true) => &["PRAGMA busy_timeout = 30000"],
            (Dialect::Sqlite, false) => &[
                "PRAGMA busy_timeout = 30000",
                "PRAGMA journal_mode = WAL",
                "PRAGMA synchronous = NORMAL",
            ],
            (Dialect::Postgres, true) => &[
                "SET default_transaction_read_only = on",
                "SET client_min_messages = warning",
            ],
            // `CREATE … IF NOT EXISTS` of an existing table is a notice, not news.
            (Dialect::Postgres, false) => &["SET client_min_messages = warning"],
        }
    }

    /// A table of the elements of the JSON array bound as `param`, in one column `value`; an
    /// element that is itself an array is read with `value ->> i`.
    pub(super) fn json_rows(self, param: &str) -> String {
        match self {
            Dialect::Sqlite => format!("json_each({param})"),
            Dialect::Postgres => format!("json_array_elements(CAST({param} AS json))"),
        }
    }

    /// `SELECT value FROM …` of a JSON array of strings bound as `param`.
    pub(super) fn json_strings(self, param: &str) -> String {
        match self {
            Dialect::Sqlite => format!("SELECT value FROM json_each({param})"),
            Dialect::Postgres => {
                format!("SELECT value FROM json_array_elements_text(CAST({param} AS json))")
            }
        }
    }

    /// A Unix time column as UTC text, `2026-12-02 06:19:52`.
    pub(super) fn utc(self, column: &str) -> String {
        match self {
            Dialect::Sqlite => format!("datetime({column}, 'unixepoch')"),
            Dialect::Postgres => {
                format!("to_char(to_timestamp({column}) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')")
            }
        }
    }

    /// The first statement of a transaction that reads before it writes and must not let a
    /// claim in between: SQLite takes its write lock at the first write, PostgreSQL needs a
    /// table lock that conflicts with the claims' row updates.
    pub(super) fn lock_runs(self) -> &'static str {
        match self {
            Dialect::Sqlite => "UPDATE runs SET id = id WHERE 1 = 0",
            Dialect::Postgres => "LOCK TABLE runs IN SHARE ROW EXCLUSIVE MODE",
        }
    }

    /// Whether `err` says a table does not exist (a database with no schema yet).
    pub(super) fn is_missing_table(self, err: &StoreError) -> bool {
        match self {
            Dialect::Sqlite => sqlite_code(err) == Some(1),
            Dialect::Postgres => db_code(err).as_deref() == Some("42P01"),
        }
    }
}
