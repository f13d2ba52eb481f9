//! SGD with momentum exactly as PyTorch's `torch.optim.SGD` (dampening 0, optional Nesterov),
//! with parameter groups by declared role so that κ/λ, normalisation parameters and biases get
//! their own weight decay, as the reference's `set_weight_decay` does.

use std::collections::HashMap;

use burn::module::{AutodiffModule, ModuleMapper, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;

use crate::config::TrainConfig;
use crate::nn::{Declare, Role};

/// Weight decay by parameter role.
#[derive(Debug, Clone, Copy)]
struct Decay {
    adaptive: f64,
    norm: f64,
    bias: f64,
    weight: f64,
}

impl Decay {
    fn of(&self, role: Role) -> f64 {
        match role {
            Role::Adaptive => self.adaptive,
            Role::Norm => self.norm,
            Role::Bias => self.bias,
            Role::Weight => self.weight,
            // Statistics get no gradient; were one to arrive, it must not be decayed.
            Role::Statistic => 0.0,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Sgd<B: Backend> {
    momentum: f64,
    nesterov: bool,
    decay: Decay,
    /// Momentum buffers by parameter, flattened.
    buffers: HashMap<ParamId, Tensor<B, 1>>,
}

impl<B: Backend> Sgd<B> {
    pub fn new(config: &TrainConfig) -> Self {
        let decay = Decay {
            adaptive: config.adaptive_weight_decay,
            norm: config.norm_weight_decay.unwrap_or(config.weight_decay),
            bias: config.bias_weight_decay,
            weight: config.weight_decay,
        };
        Self {
            momentum: config.momentum,
            nesterov: config.nesterov,
            decay,
            buffers: HashMap::new(),
        }
    }

    /// One update of every parameter that has a gradient in `grads`.
    pub fn step<AB, M>(&mut self, lr: f64, model: M, grads: GradientsParams) -> M
    where
        AB: AutodiffBackend<InnerBackend = B>,
        M: AutodiffModule<AB> + Declare,
    {
        let roles = model.param_specs().into_iter().map(|s| (s.id, s.role)).collect();
        let mut mapper = StepMapper {
            sgd: self,
            grads,
            lr,
            roles,
        };
        model.map(&mut mapper)
    }

    /// The momentum buffers, for checkpoints.
    pub fn buffers(&self) -> &HashMap<ParamId, Tensor<B, 1>> {
        &self.buffers
    }

    pub fn set_buffers(&mut self, buffers: HashMap<ParamId, Tensor<B, 1>>) {
        self.buffers = buffers;
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
        let g = if decay != 0.0 { g + p.clone() * decay } else { g };
        let g = if self.momentum != 0.0 {
            let flat = g.clone().flatten::<1>(0, D - 1);
            let buf = match self.buffers.remove(&id) {
                Some(buf) => buf * self.momentum + flat,
                None => flat,
            };
            self.buffers.insert(id, buf.clone());
            let buf = buf.reshape(dims);
            if self.nesterov {
                g + buf * self.momentum
            } else {
                buf
            }
        } else {
            g
        };
        p - g * lr
    }
}

struct StepMapper<'a, B: Backend> {
    sgd: &'a mut Sgd<B>,
    grads: GradientsParams,
    lr: f64,
    roles: HashMap<ParamId, Role>,
}

impl<AB: AutodiffBackend> ModuleMapper<AB> for StepMapper<'_, AB::InnerBackend> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<AB, D>>) -> Param<Tensor<AB, D>> {
        let (id, tensor, mapper) = param.consume();
        let Some(grad) = self.grads.remove::<AB::InnerBackend, D>(id) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        // Every parameter is declared (tested for every architecture); a module that forgot one
        // would train it as a plain weight.
        let role = self.roles.get(&id).copied().unwrap_or(Role::Weight);
        let updated = self.sgd.update(id, role, tensor.inner(), grad, self.lr);
        Param::from_mapped_value(id, Tensor::from_inner(updated).require_grad(), mapper)
    }
}
