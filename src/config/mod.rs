//! Manifests and run configs: schema, layering, validation. The `model:` section is the nn
//! half's [`crate::nn::ModelConfig`], a contract shared with `repro verify` fixtures; `data`,
//! `train` and `eval` are the other sections a trainer reads.

pub mod data;
pub mod error;
pub mod eval;
pub mod layers;
pub mod load;
pub mod manifest;
pub mod run;
pub mod train;

pub use crate::nn::ModelConfig;
pub use data::DataConfig;
pub use error::ConfigError;
pub use eval::EvalConfig;
pub use layers::{Layer, Overrides};
pub use load::{find_manifest, load_manifest, LoadedManifest, ManifestKind};
pub use manifest::Manifest;
pub use run::RunConfig;
pub use train::TrainConfig;
