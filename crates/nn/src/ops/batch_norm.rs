//! Training-mode batch normalisation as one op with its own backward.
//!
//! Composed from tensor ops, BatchNorm costs a dozen passes over the activations forward and
//! more backward, most of them broadcasts of a per-channel vector over NCHW, which the CPU
//! backend handles slowly. As one op it is two passes forward (statistics, normalise) and two
//! backward (per-channel sums, input gradient). Statistics are computed by their own call so
//! the module can update its running averages; the backward is the full BatchNorm gradient,
//! including the dependence of the batch mean and variance on the input. A ReLU that follows
//! the normalisation can be folded in (`relu`): one pass forward instead of two, and its mask
//! recomputed from the input in the backward instead of a pass of its own.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::NodeId;
use burn::backend::Autodiff;
use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::Tensor;

use super::primitive::{register_grads, unwrap, wrap};
use super::FusedBackend;

/// Per-channel mean and biased variance of `x` `[N, C, H, W]`, from tensor ops.
pub fn composite_stats<B: Backend>(x: FloatTensor<B>) -> [FloatTensor<B>; 2] {
    let x = wrap::<B, 4>(x);
    let [n, c, h, w] = x.dims();
    let per_channel = x.swap_dims(0, 1).reshape([c, n * h * w]);
    let mean = per_channel.clone().mean_dim(1);
    let var = (per_channel - mean.clone()).square().mean_dim(1);
    [unwrap(mean.reshape([c])), unwrap(var.reshape([c]))]
}

fn per_channel<B: Backend>(t: FloatTensor<B>) -> Tensor<B, 4> {
    let t = wrap::<B, 1>(t);
    let c = t.dims()[0];
    t.reshape([1, c, 1, 1])
}

/// `(x − mean)/√(var + ε)·weight + bias`, then ReLU if `relu`, from tensor ops.
pub fn composite_normalize<B: Backend>(
    x: FloatTensor<B>,
    weight: FloatTensor<B>,
    bias: FloatTensor<B>,
    [mean, var]: [FloatTensor<B>; 2],
    epsilon: f64,
    relu: bool,
) -> FloatTensor<B> {
    let scale = per_channel::<B>(weight) / (per_channel::<B>(var) + epsilon).sqrt();
    let shift = per_channel::<B>(bias) - per_channel::<B>(mean) * scale.clone();
    let y = wrap::<B, 4>(x) * scale + shift;
    unwrap(if relu {
        burn::tensor::activation::relu(y)
    } else {
        y
    })
}

/// Gradients (x, weight, bias) of training-mode BatchNorm [+ ReLU], from tensor ops:
/// dx = w·σ⁻¹·(dy − mean(dy) − x̂·mean(dy·x̂)), dw = Σ dy·x̂, db = Σ dy (sums over N, H, W), with
/// dy zeroed where the ReLU's input was not positive.
pub fn composite_backward<B: Backend>(
    x: FloatTensor<B>,
    weight: FloatTensor<B>,
    bias: FloatTensor<B>,
    [mean, var]: [FloatTensor<B>; 2],
    grad: FloatTensor<B>,
    epsilon: f64,
    relu: bool,
) -> [FloatTensor<B>; 3] {
    let dy = wrap::<B, 4>(grad);
    let dy = if relu {
        let y = composite_normalize::<B>(
            x.clone(),
            weight.clone(),
            bias,
            [mean.clone(), var.clone()],
            epsilon,
            false,
        );
        let blocked = wrap::<B, 4>(y).lower_equal_elem(0.0);
        dy.mask_fill(blocked, 0.0)
    } else {
        dy
    };
    let x = wrap::<B, 4>(x);
    let [n, c, h, w] = x.dims();
    let count = (n * h * w) as f64;
    let inv_std = (per_channel::<B>(var) + epsilon).sqrt().recip();
    let x_hat = (x - per_channel::<B>(mean)) * inv_std.clone();
    let sum = |t: Tensor<B, 4>| t.sum_dim(0).sum_dim(2).sum_dim(3);
    let db = sum(dy.clone());
    let dw = sum(dy.clone() * x_hat.clone());
    let dx = (dy - db.clone() / count - x_hat * (dw.clone() / count)) * (inv_std * per_channel::<B>(weight));
    [unwrap(dx), unwrap(dw.reshape([c])), unwrap(db.reshape([c]))]
}

#[derive(Debug)]
struct BatchNormBackward {
    epsilon: f64,
    relu: bool,
}

impl<B: FusedBackend> Backward<B, 3> for BatchNormBackward {
    type State = (NodeId, NodeId, NodeId, [FloatTensor<B>; 2]);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let parents = ops.parents.map(|parent| parent.map(|node| node.id));
        let grad = grads.consume::<B>(&ops.node);
        let (x_id, w_id, b_id, stats) = ops.state;
        let x = checkpointer.retrieve_node_output(x_id);
        let weight = checkpointer.retrieve_node_output(w_id);
        let bias = checkpointer.retrieve_node_output(b_id);
        let [dx, dw, db] = B::batch_norm_backward(x, weight, bias, stats, grad, self.epsilon, self.relu);
        register_grads::<B, 3>(grads, parents, [dx, dw, db]);
    }
}

/// The autodiff side of [`FusedBackend`]'s BatchNorm methods.
pub(crate) fn autodiff_stats<B: FusedBackend, C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<B, C>>,
) -> [FloatTensor<Autodiff<B, C>>; 2] {
    // Constants for autodiff: the op's backward accounts for their dependence on x.
    B::batch_norm_stats(x.primitive).map(|t| unwrap(Tensor::<Autodiff<B, C>, 1>::from_inner(wrap::<B, 1>(t))))
}

pub(crate) fn autodiff_normalize<B: FusedBackend, C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<B, C>>,
    weight: FloatTensor<Autodiff<B, C>>,
    bias: FloatTensor<Autodiff<B, C>>,
    [mean, var]: [FloatTensor<Autodiff<B, C>>; 2],
    epsilon: f64,
    relu: bool,
) -> FloatTensor<Autodiff<B, C>> {
    let prep = BatchNormBackward { epsilon, relu }
        .prepare::<C>([x.node.clone(), weight.node.clone(), bias.node.clone()])
        .compute_bound()
        .stateful();
    // Primitives are reference-counted: cloning them for the forward keeps the autodiff tensors
    // whole for checkpointing.
    let stats = [mean.primitive, var.primitive];
    let out = B::batch_norm_normalize(
        x.primitive.clone(),
        weight.primitive.clone(),
        bias.primitive.clone(),
        stats.clone(),
        epsilon,
        relu,
    );
    match prep {
        OpsKind::Tracked(mut prep) => {
            let state = (
                prep.checkpoint(&x),
                prep.checkpoint(&weight),
                prep.checkpoint(&bias),
                stats,
            );
            prep.finish(state, out)
        }
        OpsKind::UnTracked(prep) => prep.finish(out),
    }
}

/// Tensor-level entry point: per-channel batch mean and biased variance of `x` `[N, C, H, W]`.
pub fn stats_op<B: FusedBackend>(x: Tensor<B, 4>) -> [Tensor<B, 1>; 2] {
    B::batch_norm_stats(unwrap(x)).map(wrap::<B, 1>)
}

/// Tensor-level entry point: `(x − mean)/√(var + ε)·weight + bias`, then ReLU if `relu`.
pub fn normalize_op<B: FusedBackend>(
    x: Tensor<B, 4>,
    weight: Tensor<B, 1>,
    bias: Tensor<B, 1>,
    [mean, var]: [Tensor<B, 1>; 2],
    epsilon: f64,
    relu: bool,
) -> Tensor<B, 4> {
    let [x, weight, bias, mean, var] = [unwrap(x), unwrap(weight), unwrap(bias), unwrap(mean), unwrap(var)];
    wrap(B::batch_norm_normalize(
        x,
        weight,
        bias,
        [mean, var],
        epsilon,
        relu,
    ))
}
