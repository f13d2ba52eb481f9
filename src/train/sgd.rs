//! SGD with momentum exactly as PyTorch's `torch.optim.SGD` (dampening 0, optional Nesterov),
//! with parameter groups by kind so that κ/λ, normalisation parameters and biases get their own
//! weight decay, as the reference's `set_weight_decay` does.

use std::collections::HashMap;

use burn::module::{AutodiffModule, ModuleMapper, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;

use crate::config::TrainConfig;

/// Which weight decay a parameter gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamGroup {
    /// APA/AGLU κ and λ, gate temperatures.
    Adaptive,
    /// BatchNorm and LayerNorm weights and biases.
    Norm,
    /// Biases of linear layers.
    Bias,
    /// Convolution and linear weights, and everything else.
    Weight,
}

impl ParamGroup {
    /// Classifies a parameter by its field name and the type of the module holding it.
    pub fn of(name: &str, container: &str) -> Self {
        match (container.strip_prefix("Struct:").unwrap_or(container), name) {
            ("Adaptive", _) | ("GateAct", "temperature") => Self::Adaptive,
            ("BatchNorm" | "LayerNorm", _) => Self::Norm,
            (_, "bias") => Self::Bias,
            _ => Self::Weight,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Sgd<B: Backend> {
    momentum: f64,
    nesterov: bool,
    decay: [f64; 4],
    /// Momentum buffers by parameter, flattened.
    buffers: HashMap<ParamId, Tensor<B, 1>>,
}

impl<B: Backend> Sgd<B> {
    pub fn new(config: &TrainConfig) -> Self {
        let decay = [
            config.adaptive_weight_decay,
            config.norm_weight_decay.unwrap_or(config.weight_decay),
            config.bias_weight_decay,
            config.weight_decay,
        ];
        Self {
            momentum: config.momentum,
            nesterov: config.nesterov,
            decay,
            buffers: HashMap::new(),
        }
    }

    fn decay_of(&self, group: ParamGroup) -> f64 {
        self.decay[group as usize]
    }

    /// One update of every parameter that has a gradient in `grads`.
    pub fn step<AB, M>(&mut self, lr: f64, model: M, grads: GradientsParams) -> M
    where
        AB: AutodiffBackend<InnerBackend = B>,
        M: AutodiffModule<AB>,
    {
        let mut mapper = StepMapper {
            sgd: self,
            grads,
            lr,
            path: Vec::new(),
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
        group: ParamGroup,
        p: Tensor<B, D>,
        g: Tensor<B, D>,
        lr: f64,
    ) -> Tensor<B, D> {
        let dims = p.dims();
        let decay = self.decay_of(group);
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
    path: Vec<(String, String)>,
}

impl<AB: AutodiffBackend> ModuleMapper<AB> for StepMapper<'_, AB::InnerBackend> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.push((name.to_string(), container_type.to_string()));
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<AB, D>>) -> Param<Tensor<AB, D>> {
        let (id, tensor, mapper) = param.consume();
        let Some(grad) = self.grads.remove::<AB::InnerBackend, D>(id) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let group = self.path.last().map_or(ParamGroup::Weight, |(name, container)| {
            ParamGroup::of(name, container)
        });
        let updated = self.sgd.update(id, group, tensor.inner(), grad, self.lr);
        Param::from_mapped_value(id, Tensor::from_inner(updated).require_grad(), mapper)
    }
}
