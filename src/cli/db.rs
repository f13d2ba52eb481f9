//! `repro db copy FROM TO`: move results between stores, e.g. from a cluster's PostgreSQL to a
//! SQLite file to take home.

use clap::{Args, Subcommand};

use super::common::print_json;
use repro::store::Store;

#[derive(Debug, Args)]
pub struct DbArgs {
    #[command(subcommand)]
    pub command: DbCommand,
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Copy every run of one store into another (SQLite and PostgreSQL, either way)
    ///
    /// Run ids, provenance, metrics and artifact hashes are kept as they are. Runs the
    /// destination already has are left as they are there; the destination is created (SQLite)
    /// or migrated when needed. One transaction: an interrupted copy writes nothing.
    Copy(CopyArgs),
}

#[derive(Debug, Args)]
pub struct CopyArgs {
    /// Store to read (sqlite://PATH, a path, or postgres://…)
    pub from: String,
    /// Store to write
    pub to: String,
    /// Print what was copied as JSON
    #[arg(long)]
    pub json: bool,
}

pub fn cmd_db(args: DbArgs) -> anyhow::Result<()> {
    match args.command {
        DbCommand::Copy(a) => cmd_copy(a),
    }
}

fn cmd_copy(args: CopyArgs) -> anyhow::Result<()> {
    let from = Store::open_read_only(&args.from)?;
    let to = Store::open(&args.to)?;
    let summary = from.copy_into(&to)?;
    if args.json {
        return print_json(&summary);
    }
    println!(
        "copied {} runs ({} rows) from {} to {}",
        summary.copied,
        summary.rows,
        from.backend(),
        to.backend()
    );
    if summary.kept > 0 {
        println!(
            "{} runs were already in the destination and were left as they are there",
            summary.kept
        );
    }
    Ok(())
}
