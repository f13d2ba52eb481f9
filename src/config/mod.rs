//! Run-config types (serde). The `model:` section is a contract shared with `repro verify`
//! fixtures and manifests.

pub mod data;
pub mod eval;
pub mod model;
pub mod run;
pub mod train;

pub use data::DataConfig;
pub use eval::EvalConfig;
pub use model::ModelConfig;
pub use run::RunConfig;
pub use train::TrainConfig;
