//! Building blocks, each a `#[derive(Module)]` built from its own small config: activations and
//! gates (a registry-like enum each), BatchNorm, attention blocks, classification heads, the
//! transformer block.

pub mod activation;
pub mod attention;
pub mod classifier;
pub mod norm;
pub mod transformer;

pub use activation::{Act, ActConfig, Activation, Adaptive, AdaptiveConfig, Gate, GateAct, GateConfig};
pub use attention::{Attention, AttentionConfig, AttentionKind, KeyStyle};
pub use classifier::{Classifier, Head, HeadConfig};
pub use norm::{BatchNorm, BatchNormConfig};
pub use transformer::{causal_mask, BlockInit, BlockKeys, TransformerBlock, TransformerBlockConfig};
