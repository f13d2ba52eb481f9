//! Moving between `Tensor` and the backend's float primitive, which the fused ops work on, and
//! handing their gradients back to autodiff.

use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::NodeId;
use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{Tensor, TensorPrimitive};

pub(crate) fn wrap<B: Backend, const D: usize>(t: FloatTensor<B>) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(t))
}

pub(crate) fn unwrap<B: Backend, const D: usize>(t: Tensor<B, D>) -> FloatTensor<B> {
    t.into_primitive().tensor()
}

/// Registers each gradient with its parent, skipping parents autodiff does not track (`None`).
pub(crate) fn register_grads<B: Backend, const N: usize>(
    grads: &mut Gradients,
    parents: [Option<NodeId>; N],
    values: [FloatTensor<B>; N],
) {
    for (parent, grad) in parents.into_iter().zip(values) {
        if let Some(id) = parent {
            grads.register::<B>(id, grad);
        }
    }
}
