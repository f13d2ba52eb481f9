//! The optimisers of the paper's recipes, with parameter groups by declared role so that κ/λ,
//! normalisation parameters, biases and embeddings get their own weight decay (the reference's
//! `set_weight_decay`):
//! - SGD with momentum exactly as `torch.optim.SGD` (dampening 0, optional Nesterov), the CNN
//!   recipes;
//! - AdamW exactly as `torch.optim.AdamW` (decoupled weight decay, bias-corrected moments), the
//!   transformer recipes;
//!
//! and optional clipping of the global gradient norm as `torch.nn.utils.clip_grad_norm_`.

use std::collections::HashMap;

use burn::module::{AutodiffModule, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Tensor};

use crate::config::train::OptimizerKind;
use crate::config::TrainConfig;
use crate::nn::{Declare, Role};

/// Weight decay by parameter role.
#[derive(Debug, Clone, Copy)]
struct Decay {
    adaptive: f64,
    norm: f64,
    bias: f64,
    weight: f64,
    embedding: f64,
}

impl Decay {
    fn of(&self, role: Role) -> f64 {
        match role {
            Role::Adaptive => self.adaptive,
            Role::Norm => self.norm,
            Role::Bias => self.bias,
            Role::Weight => self.weight,
            Role::Embedding => self.embedding,
            // Statistics get no gradient; were one to arrive, it must not be decayed.
            Role::Statistic => 0.0,
        }
    }
}

/// A per-parameter buffer of optimiser state; its prefix names it in checkpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Slot {
    /// SGD's momentum buffer.
    Momentum,
    /// AdamW's first moment.
    ExpAvg,
    /// AdamW's second moment.
    ExpAvgSq,
}

impl Slot {
    pub const ALL: [Slot; 3] = [Slot::Momentum, Slot::ExpAvg, Slot::ExpAvgSq];

    /// The checkpoint key prefix of this slot's tensors (PyTorch's state names).
    pub fn prefix(self) -> &'static str {
        match self {
            Slot::Momentum => "momentum.",
            Slot::ExpAvg => "exp_avg.",
            Slot::ExpAvgSq => "exp_avg_sq.",
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Rule {
    Sgd { momentum: f64, nesterov: bool },
    AdamW { beta1: f64, beta2: f64, eps: f64 },
}

/// Optimiser state: per-parameter buffers (flattened) and the number of updates made.
pub struct State<B: Backend> {
    pub buffers: HashMap<(Slot, ParamId), Tensor<B, 1>>,
    pub steps: u64,
}

#[derive(Debug, Clone)]
pub struct Optimizer<B: Backend> {
    rule: Rule,
    decay: Decay,
    clip_grad_norm: Option<f64>,
    buffers: HashMap<(Slot, ParamId), Tensor<B, 1>>,
    /// Updates made so far (AdamW's bias correction counts them).
    steps: u64,
}

impl<B: Backend> Optimizer<B> {
    pub fn new(config: &TrainConfig) -> Self {
        let decay = Decay {
            adaptive: config.adaptive_weight_decay,
            norm: config.norm_weight_decay.unwrap_or(config.weight_decay),
            bias: config.bias_weight_decay,
            weight: config.weight_decay,
            embedding: config.embedding_weight_decay.unwrap_or(config.weight_decay),
        };
        let rule = match config.optimizer {
            OptimizerKind::Sgd => Rule::Sgd {
                momentum: config.momentum,
                nesterov: config.nesterov,
            },
            OptimizerKind::Adamw => Rule::AdamW {
                beta1: config.betas[0],
                beta2: config.betas[1],
                eps: config.eps,
            },
        };
        Self {
            rule,
            decay,
            clip_grad_norm: config.clip_grad_norm,
            buffers: HashMap::new(),
            steps: 0,
        }
    }

    /// One update of every parameter that has a gradient in `grads`.
    pub fn step<AB, M>(&mut self, lr: f64, model: M, grads: GradientsParams) -> M
    where
        AB: AutodiffBackend<InnerBackend = B>,
        M: AutodiffModule<AB> + Declare,
    {
        let scale = match self.clip_grad_norm {
            Some(max_norm) => clip_factor::<AB, M>(&model, &grads, max_norm),
            None => 1.0,
        };
        self.steps += 1;
        let roles = model.param_specs().into_iter().map(|s| (s.id, s.role)).collect();
        let mut mapper = StepMapper {
            optimizer: self,
            grads,
            lr,
            scale,
            roles,
        };
        model.map(&mut mapper)
    }

    /// The state to checkpoint.
    pub fn state(&self) -> State<B> {
        State {
            buffers: self.buffers.clone(),
            steps: self.steps,
        }
    }

    pub fn restore(&mut self, state: State<B>) {
        self.buffers = state.buffers;
        self.steps = state.steps;
    }

    fn update<const D: usize>(
        &mut self,
        id: ParamId,
        role: Role,
        p: Tensor<B, D>,
        g: Tensor<B, D>,
        lr: f64,
    ) -> Tensor<B, D> {
        let dims = p.dims();
        let decay = self.decay.of(role);
        match self.rule {
            Rule::Sgd { momentum, nesterov } => {
                let g = if decay != 0.0 { g + p.clone() * decay } else { g };
                let g = if momentum != 0.0 {
                    let flat = g.clone().flatten::<1>(0, D - 1);
                    let buf = match self.buffers.remove(&(Slot::Momentum, id)) {
                        Some(buf) => buf * momentum + flat,
                        None => flat,
                    };
                    self.buffers.insert((Slot::Momentum, id), buf.clone());
                    let buf = buf.reshape(dims);
                    if nesterov {
                        g + buf * momentum
                    } else {
                        buf
                    }
                } else {
                    g
                };
                p - g * lr
            }
            Rule::AdamW { beta1, beta2, eps } => {
                let p = if decay != 0.0 { p * (1.0 - lr * decay) } else { p };
                let flat = g.flatten::<1>(0, D - 1);
                let m = self.moment(Slot::ExpAvg, id, flat.clone(), beta1);
                let v = self.moment(Slot::ExpAvgSq, id, flat.clone() * flat, beta2);
                let t = self.steps as i32;
                let step_size = lr / (1.0 - beta1.powi(t));
                let denom = v.sqrt() / (1.0 - beta2.powi(t)).sqrt() + eps;
                p - (m / denom * step_size).reshape(dims)
            }
        }
    }

    /// The exponential moving average in `slot` after adding `x` with weight `1 − beta`.
    fn moment(&mut self, slot: Slot, id: ParamId, x: Tensor<B, 1>, beta: f64) -> Tensor<B, 1> {
        let avg = match self.buffers.remove(&(slot, id)) {
            Some(avg) => avg * beta + x * (1.0 - beta),
            None => x * (1.0 - beta),
        };
        self.buffers.insert((slot, id), avg.clone());
        avg
    }
}

/// The factor that brings the global L2 norm of `grads` down to `max_norm`, or 1 when it is
/// below (PyTorch's `clip_grad_norm_`, its 1e-6 included).
fn clip_factor<AB: AutodiffBackend, M: AutodiffModule<AB>>(
    model: &M,
    grads: &GradientsParams,
    max_norm: f64,
) -> f64 {
    struct SquaredNorm<'a, B: Backend> {
        grads: &'a GradientsParams,
        sum: f64,
        marker: std::marker::PhantomData<B>,
    }
    impl<AB: AutodiffBackend> ModuleVisitor<AB> for SquaredNorm<'_, AB::InnerBackend> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<AB, D>>) {
            if let Some(g) = self.grads.get::<AB::InnerBackend, D>(param.id) {
                self.sum += (g.clone() * g).sum().into_scalar().elem::<f64>();
            }
        }
    }
    let mut visitor = SquaredNorm::<AB::InnerBackend> {
        grads,
        sum: 0.0,
        marker: std::marker::PhantomData,
    };
    model.visit(&mut visitor);
    (max_norm / (visitor.sum.sqrt() + 1e-6)).min(1.0)
}

struct StepMapper<'a, B: Backend> {
    optimizer: &'a mut Optimizer<B>,
    grads: GradientsParams,
    lr: f64,
    /// Gradient clipping's factor (1: none).
    scale: f64,
    roles: HashMap<ParamId, Role>,
}

impl<AB: AutodiffBackend> ModuleMapper<AB> for StepMapper<'_, AB::InnerBackend> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<AB, D>>) -> Param<Tensor<AB, D>> {
        let (id, tensor, mapper) = param.consume();
        let Some(grad) = self.grads.remove::<AB::InnerBackend, D>(id) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let grad = if self.scale < 1.0 { grad * self.scale } else { grad };
        // Every parameter is declared (tested for every architecture); a module that forgot one
        // would train it as a plain weight.
        let role = self.roles.get(&id).copied().unwrap_or(Role::Weight);
        let updated = self.optimizer.update(id, role, tensor.inner(), grad, self.lr);
        Param::from_mapped_value(id, Tensor::from_inner(updated).require_grad(), mapper)
    }
}
