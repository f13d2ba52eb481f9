//! Run-config types (serde). The `model:` section is a contract shared with `repro verify`
//! fixtures and manifests.

pub mod model;

pub use model::ModelConfig;
