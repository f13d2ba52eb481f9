//! 2-D convolution as one op with its own backward, for backends with their own kernels.
//!
//! Burn's `Conv2d` module is kept for parameters, initialisation and checkpoints; [`conv2d`]
//! runs it through [`FusedBackend::fused_conv2d`] where the backend has a kernel (the CPU
//! backend, f32, one group) and through `Conv2d::forward` everywhere else, so the CUDA backend
//! keeps Burn's own convolution and autodiff.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::NodeId;
use burn::backend::Autodiff;
use burn::nn::conv::Conv2d;
use burn::nn::PaddingConfig2d;
use burn::tensor::backend::Backend;
use burn::tensor::ops::{ConvOptions, FloatTensor};
use burn::tensor::Tensor;

use super::primitive::{register_grads, unwrap, wrap};
use super::FusedBackend;

/// `conv.forward(x)`, through the backend's fused convolution where it has one.
pub fn conv2d<B: FusedBackend>(conv: &Conv2d<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    // `Same` may pad asymmetrically; the models use explicit, symmetric padding.
    let padding = match conv.padding {
        PaddingConfig2d::Valid => Some([0, 0]),
        PaddingConfig2d::Explicit(top, left, bottom, right) => {
            (top == bottom && left == right).then_some([top, left])
        }
        PaddingConfig2d::Same => None,
    };
    let Some(padding) = padding else {
        return conv.forward(x);
    };
    let options = ConvOptions::new(conv.stride, padding, conv.dilation, conv.groups);
    let weight = unwrap(conv.weight.val());
    let x = unwrap(x);
    if !B::has_fused_conv2d(&x, &weight, &options) {
        return conv.forward(wrap(x));
    }
    let y = wrap::<B, 4>(B::fused_conv2d(x, weight, options));
    match &conv.bias {
        Some(bias) => {
            let channels = bias.dims()[0];
            y + bias.val().reshape([1, channels, 1, 1])
        }
        None => y,
    }
}

/// Gradients (input, weight) of a convolution without bias, from Burn's own backward ops.
pub fn composite_backward<B: Backend>(
    x: FloatTensor<B>,
    weight: FloatTensor<B>,
    grad: FloatTensor<B>,
    options: ConvOptions<2>,
) -> [FloatTensor<B>; 2] {
    let dx = B::conv2d_x_backward(x.clone(), weight.clone(), grad.clone(), options.clone());
    [dx, B::conv2d_weight_backward(x, weight, grad, options)]
}

#[derive(Debug)]
struct ConvBackward {
    options: ConvOptions<2>,
}

impl<B: FusedBackend> Backward<B, 2> for ConvBackward {
    type State = (NodeId, NodeId);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let parents = ops.parents.map(|parent| parent.map(|node| node.id));
        let grad = grads.consume::<B>(&ops.node);
        let (x_id, w_id) = ops.state;
        let x = checkpointer.retrieve_node_output(x_id);
        let weight = checkpointer.retrieve_node_output(w_id);
        let [dx, dw] = B::fused_conv2d_backward(x, weight, grad, self.options);
        register_grads::<B, 2>(grads, parents, [dx, dw]);
    }
}

/// The autodiff side of [`FusedBackend::fused_conv2d`].
pub(crate) fn autodiff_forward<B: FusedBackend, C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<B, C>>,
    weight: FloatTensor<Autodiff<B, C>>,
    options: ConvOptions<2>,
) -> FloatTensor<Autodiff<B, C>> {
    let prep = ConvBackward {
        options: options.clone(),
    }
    .prepare::<C>([x.node.clone(), weight.node.clone()])
    .compute_bound()
    .stateful();
    // Primitives are reference-counted: cloning them for the forward keeps the autodiff tensors
    // whole for checkpointing.
    let out = B::fused_conv2d(x.primitive.clone(), weight.primitive.clone(), options);
    match prep {
        OpsKind::Tracked(mut prep) => {
            let state = (prep.checkpoint(&x), prep.checkpoint(&weight));
            prep.finish(state, out)
        }
        OpsKind::UnTracked(prep) => prep.finish(out),
    }
}
