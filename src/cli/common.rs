use std::path::PathBuf;

use clap::Args;

use repro::config::load::ManifestKind;
use repro::config::{find_manifest, LoadedManifest, Overrides};
use repro::plan::{expand, Plan};
use repro::store::{Store, StoreError, DEFAULT_DB};

#[derive(Debug, Clone, Args)]
pub struct ManifestArgs {
    /// Manifest id (file stem or `id:`), or a path to a .yaml file
    pub name: String,
    #[command(flatten)]
    pub opts: ManifestOpts,
}

/// How a manifest is resolved: everything but its name.
#[derive(Debug, Clone, Args)]
pub struct ManifestOpts {
    /// Named overlay: paper (default), cpu, smoke, or any the manifest defines
    #[arg(long)]
    pub profile: Option<String>,
    /// Override a config key for every run (highest precedence), e.g. --set train.epochs=2
    #[arg(long = "set", value_name = "KEY.PATH=VALUE")]
    pub set: Vec<String>,
    /// Folder holding the manifests (sweeps in its sweeps/ subfolder)
    #[arg(long, default_value = "experiments")]
    pub experiments: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct DbArg {
    /// Results database: sqlite://PATH (or a path), or postgres://USER@HOST[:PORT]/DB
    #[arg(long, env = "REPRO_DB", default_value = DEFAULT_DB)]
    pub db: String,
}

impl DbArg {
    /// For commands that write: creates the store when missing.
    pub fn open(&self) -> anyhow::Result<Store> {
        Ok(Store::open(&self.db)?)
    }

    /// For commands that change what is stored: a missing store is an error, not a new file.
    pub fn open_existing(&self) -> anyhow::Result<Store> {
        Ok(Store::open_existing(&self.db)?)
    }

    /// For commands that only read: a missing store is an error, and nothing is written.
    pub fn open_read_only(&self) -> anyhow::Result<Store> {
        Ok(Store::open_read_only(&self.db)?)
    }

    /// For commands that read what is there: no store yet means nothing has run.
    pub fn open_if_exists(&self) -> anyhow::Result<Option<Store>> {
        match Store::open_read_only(&self.db) {
            Ok(store) => Ok(Some(store)),
            Err(StoreError::Missing(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

impl ManifestOpts {
    pub fn profile(&self) -> &str {
        self.profile
            .as_deref()
            .unwrap_or(repro::config::manifest::PAPER_PROFILE)
    }

    pub fn overrides(&self) -> anyhow::Result<Overrides> {
        Ok(Overrides::from_env_and_sets(&self.set)?)
    }

    /// Loads, validates and expands; any input error surfaces here, before the store is touched.
    pub fn plan(&self, name: &str, kind: ManifestKind) -> anyhow::Result<(LoadedManifest, Plan)> {
        let m = self.load(name, kind)?;
        let plan = self.expand(&m, self.profile())?;
        Ok((m, plan))
    }

    pub fn load(&self, name: &str, kind: ManifestKind) -> anyhow::Result<LoadedManifest> {
        Ok(find_manifest(&self.experiments, name, kind)?)
    }

    pub fn expand(&self, m: &LoadedManifest, profile: &str) -> anyhow::Result<Plan> {
        Ok(expand(m, profile, &self.overrides()?)?)
    }
}

impl ManifestArgs {
    pub fn plan(&self, kind: ManifestKind) -> anyhow::Result<(LoadedManifest, Plan)> {
        self.opts.plan(&self.name, kind)
    }
}

pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

pub use repro::plan::labels_text;
