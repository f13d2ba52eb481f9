//! How a dependent stage starts from its parent's checkpoint (`train.from_parent`).

use std::path::Path;

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::checkpoint::MOMENTUM;
use crate::config::model::Arch;
use crate::config::train::FromParent;
use crate::config::RunConfig;
use crate::nn::import::{
    classifier_prefix, load_state_dict_keeping, read_state_dict, ImportError, StateDict,
};
use crate::nn::{Family, FusedBackend, Model};

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
        .filter(|(k, _)| !k.starts_with(MOMENTUM))
        .collect();
    let head = classifier_prefix(&run.model);
    let keep_head = match run.train.from_parent {
        FromParent::Crt => true,
        FromParent::Finetune => head_shape_differs(&model, run, &state, head),
        FromParent::None => false,
    };
    let model = load_state_dict_keeping(
        model,
        &run.model,
        state,
        parent,
        device,
        keep_head.then_some(head),
    )?;
    Ok(match run.train.from_parent {
        FromParent::Finetune => freeze_all_but_last_stage(model, run.model.arch),
        _ => model,
    })
}

fn head_shape_differs<B: FusedBackend>(
    model: &Model<B>,
    run: &RunConfig,
    state: &StateDict,
    head: &str,
) -> bool {
    let ours = crate::nn::import::export_state_dict(model, &run.model);
    ours.iter()
        .filter(|(k, _)| k.starts_with(head))
        .any(|(k, v)| state.get(k).is_none_or(|t| t.shape != v.shape))
}

/// Stops gradients everywhere but the classifier and the last backbone stage.
fn freeze_all_but_last_stage<B: Backend>(model: Model<B>, arch: Arch) -> Model<B> {
    let last_stage = match arch.family() {
        Family::Cifar => vec!["layer3".to_string()],
        Family::ImageNet => vec!["stages".to_string(), "3".to_string()],
    };
    model.map(&mut Freezer {
        path: Vec::new(),
        last_stage,
    })
}

struct Freezer {
    path: Vec<String>,
    last_stage: Vec<String>,
}

impl<B: Backend> ModuleMapper<B> for Freezer {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        // Enum variants (the model family) are not part of a parameter's place in the network.
        if !container_type.starts_with("Enum:") {
            self.path.push(name.to_string());
        }
    }

    fn exit_module(&mut self, _name: &str, container_type: &str) {
        if !container_type.starts_with("Enum:") {
            self.path.pop();
        }
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let trainable =
            self.path.first().is_some_and(|p| p == "classifier") || self.path.starts_with(&self.last_stage);
        if trainable {
            param
        } else {
            let (id, value, mapper) = param.consume();
            Param::from_mapped_value(id, value.set_require_grad(false), mapper)
        }
    }
}
