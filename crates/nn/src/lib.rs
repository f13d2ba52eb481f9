//! repro's neural-network half (`repro::nn`): fused ops, building blocks, whole models,
//! parameter declarations and reference-checkpoint import. A crate of its own, so that nothing
//! here can use run configs, manifests or the results store; the `model:` section of a run
//! config is [`ModelConfig`], defined here.
//!
//! Modules, each importing only those listed after it: `models` → `layers` → `ops`, with
//! `init`, `rng` and `params` beneath them all; `import` reads checkpoints into any model
//! through its declared parameters.

pub mod import;
pub mod init;
pub mod layers;
pub mod models;
pub mod ops;
pub mod params;
pub mod rng;

pub use models::{Arch, Family, Gpt2, Model, ModelConfig, Task, WrongTask};
pub use ops::FusedBackend;
pub use params::{Declare, ParamSpec, Place, Role};
