//! How a dependent stage starts from its parent's checkpoint (`train.from_parent`).

use std::collections::HashSet;
use std::path::Path;

use burn::module::{Module, ModuleMapper, Param, ParamId};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::checkpoint::optimizer_slot;
use crate::config::train::FromParent;
use crate::config::RunConfig;
use crate::nn::import::{
    export_state_dict, load_state_dict_keeping, read_state_dict, ImportError, KeepHead, StateDict,
};
use crate::nn::{Declare, FusedBackend, Model, ParamSpec, Place};

/// Loads the parent's weights into a fresh `model`. cRT always keeps the fresh classifier;
/// fine-tuning keeps it only when the parent's has another shape (another class count).
pub fn load_parent<B: FusedBackend>(
    model: Model<B>,
    run: &RunConfig,
    parent: &Path,
    device: &B::Device,
) -> Result<Model<B>, ImportError> {
    let state: StateDict = read_state_dict(parent)?
        .into_iter()
        .filter(|(k, _)| optimizer_slot(k).is_none())
        .collect();
    let keep_head = match run.train.from_parent {
        FromParent::Crt => true,
        FromParent::Finetune => head_shape_differs(&model, &state),
        FromParent::None => false,
    };
    let keep = if keep_head { KeepHead::Yes } else { KeepHead::No };
    let model = load_state_dict_keeping(model, state, parent, device, keep)?;
    Ok(match run.train.from_parent {
        FromParent::Finetune => freeze_all_but_last_stage(model),
        _ => model,
    })
}

fn head_shape_differs<B: FusedBackend>(model: &Model<B>, state: &StateDict) -> bool {
    let head: HashSet<String> = model
        .param_specs()
        .into_iter()
        .filter(|s| s.place == Place::Head)
        .map(|s| s.key)
        .collect();
    export_state_dict(model)
        .iter()
        .filter(|(k, _)| head.contains(*k))
        .any(|(k, v)| state.get(k).is_none_or(|t| t.shape != v.shape))
}

/// Stops gradients everywhere but the classifier and the last backbone stage.
fn freeze_all_but_last_stage<B: Backend, M: Module<B> + Declare>(model: M) -> M {
    let specs = model.param_specs();
    let last = specs
        .iter()
        .filter_map(|s| match s.place {
            Place::Stage(i) => Some(i),
            _ => None,
        })
        .max();
    let trainable = |s: &ParamSpec| s.place == Place::Head || Some(s.place) == last.map(Place::Stage);
    let frozen = specs.iter().filter(|s| !trainable(s)).map(|s| s.id).collect();
    model.map(&mut Freezer { frozen })
}

struct Freezer {
    frozen: HashSet<ParamId>,
}

impl<B: Backend> ModuleMapper<B> for Freezer {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        if !self.frozen.contains(&param.id) {
            return param;
        }
        let (id, value, mapper) = param.consume();
        Param::from_mapped_value(id, value.set_require_grad(false), mapper)
    }
}
