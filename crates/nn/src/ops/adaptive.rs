//! The APA / AGLU element-wise op with its own backward.
//!
//! APA (paper Eq. 5) is evaluated as `p = exp(log_sigmoid(κz − ln λ) / λ)`, which never forms
//! `λ·exp(−κz)` and so stays finite for large |κz|; AGLU is `z·p`. The backward is written by
//! hand for two reasons: the reference code trains AGLU with a hand-written ∂/∂λ that drops a
//! term (selectable with [`LambdaGrad::Reference`] to study the difference), and one fused op
//! saves autodiff from recording the dozen primitive ops of the forward.
//!
//! Backends opt in through [`FusedBackend`]; its default method composes standard tensor
//! ops, so any backend works and a backend with a fused kernel overrides it.

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
use super::{AdaptiveKind, FusedBackend, LambdaGrad};

/// The forward from standard tensor ops (any backend, any float dtype).
pub fn composite_forward<B: Backend>(
    z: FloatTensor<B>,
    kappa: FloatTensor<B>,
    lambda: FloatTensor<B>,
    kind: AdaptiveKind,
    _lambda_grad: LambdaGrad,
) -> FloatTensor<B> {
    let (z, kappa, lambda) = (wrap::<B, 4>(z), wrap::<B, 4>(kappa), wrap::<B, 4>(lambda));
    let p = apa(z.clone(), kappa, lambda);
    unwrap(match kind {
        AdaptiveKind::Apa => p,
        AdaptiveKind::Aglu => p * z,
    })
}

/// The backward from standard tensor ops (any backend, any float dtype).
pub fn composite_backward<B: Backend>(
    z: FloatTensor<B>,
    kappa: FloatTensor<B>,
    lambda: FloatTensor<B>,
    grad: FloatTensor<B>,
    kind: AdaptiveKind,
    lambda_grad: LambdaGrad,
) -> [FloatTensor<B>; 3] {
    let (z, kappa, lambda, grad) = (
        wrap::<B, 4>(z),
        wrap::<B, 4>(kappa),
        wrap::<B, 4>(lambda),
        wrap::<B, 4>(grad),
    );
    let (kappa_shape, lambda_shape) = (kappa.dims(), lambda.dims());
    let [dz, dkappa, dlambda] = adaptive_grads(z, kappa, lambda, kind, lambda_grad);
    [
        unwrap(dz * grad.clone()),
        unwrap(reduce_to(dkappa * grad.clone(), kappa_shape)),
        unwrap(reduce_to(dlambda * grad, lambda_shape)),
    ]
}

/// `log σ(x) = min(x, 0) − ln(1 + e^{−|x|})`, exact and finite for every finite x.
pub fn log_sigmoid<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    x.clone().clamp_max(0.0) - x.abs().neg().exp().log1p()
}

fn log_sigmoid_arg<B: Backend>(z: Tensor<B, 4>, kappa: Tensor<B, 4>, lambda: Tensor<B, 4>) -> Tensor<B, 4> {
    z * kappa - lambda.log()
}

/// APA `p(z; κ, λ)` from standard tensor ops.
pub fn apa<B: Backend>(z: Tensor<B, 4>, kappa: Tensor<B, 4>, lambda: Tensor<B, 4>) -> Tensor<B, 4> {
    let u = log_sigmoid_arg(z, kappa, lambda.clone());
    (log_sigmoid(u) / lambda).exp()
}

/// Gradients of the op with respect to (z, κ, λ), each of z's shape (not yet reduced).
///
/// With u = κz − ln λ, t = σ(−u) and c = p·t/λ (= p/(λ + e^{κz}), the paper's coefficient):
/// ∂p/∂z = κc, ∂p/∂κ = zc, ∂p/∂λ = −p·(log σ(u) + t)/λ². For AGLU multiply by z and add p to
/// ∂/∂z. The reference backward keeps only −zc/λ of ∂AGLU/∂λ.
fn adaptive_grads<B: Backend>(
    z: Tensor<B, 4>,
    kappa: Tensor<B, 4>,
    lambda: Tensor<B, 4>,
    kind: AdaptiveKind,
    lambda_grad: LambdaGrad,
) -> [Tensor<B, 4>; 3] {
    let u = log_sigmoid_arg(z.clone(), kappa.clone(), lambda.clone());
    let ls = log_sigmoid(u.clone());
    let p = (ls.clone() / lambda.clone()).exp();
    let t = log_sigmoid(u.neg()).exp();
    let c = p.clone() * t.clone() / lambda.clone();
    let lambda_sq = lambda.clone().powi_scalar(2);
    let dp_dlambda = || (p.clone() * log1m_plus_identity(ls.clone(), t.clone())).neg() / lambda_sq.clone();
    match kind {
        AdaptiveKind::Apa => [c.clone() * kappa, c * z, dp_dlambda()],
        AdaptiveKind::Aglu => {
            let dlambda = match lambda_grad {
                LambdaGrad::Exact => dp_dlambda() * z.clone(),
                LambdaGrad::Reference => (c.clone() * z.clone()).neg() / lambda,
            };
            let zc = c * z.clone();
            [p + zc.clone() * kappa, zc * z, dlambda]
        }
    }
}

/// `ln(1 − t) + t` with t = σ(−u) and `ls` = ln(1 − t) = log σ(u). The two terms cancel to
/// −t²/2 for small t (large u), which in f32 loses every digit once λ is small enough to
/// amplify the result by 1/λ²; below t = 0.1 the series −Σ_{k≥2} tᵏ/k is used instead
/// (truncated after t¹², relative error < 2e-10).
fn log1m_plus_identity<B: Backend>(ls: Tensor<B, 4>, t: Tensor<B, 4>) -> Tensor<B, 4> {
    let direct = ls + t.clone();
    let horner = (2..=12)
        .rev()
        .fold(t.zeros_like(), |acc, k| acc * t.clone() + 1.0 / k as f64);
    let series = (t.clone() * t.clone() * horner).neg();
    direct.mask_where(t.lower_elem(0.1), series)
}

/// Sums a full-size gradient down to the (broadcast) shape of the parameter it belongs to.
fn reduce_to<B: Backend>(grad: Tensor<B, 4>, shape: [usize; 4]) -> Tensor<B, 4> {
    let dims = grad.dims();
    (0..4).fold(grad, |g, d| {
        if shape[d] == 1 && dims[d] != 1 {
            g.sum_dim(d)
        } else {
            g
        }
    })
}

#[derive(Debug)]
struct AdaptiveBackward {
    kind: AdaptiveKind,
    lambda_grad: LambdaGrad,
}

impl<B: FusedBackend> Backward<B, 3> for AdaptiveBackward {
    type State = (NodeId, NodeId, NodeId);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let parents = ops.parents.map(|parent| parent.map(|node| node.id));
        let grad_out = grads.consume::<B>(&ops.node);
        let (z_id, kappa_id, lambda_id) = ops.state;
        let z = checkpointer.retrieve_node_output(z_id);
        let kappa = checkpointer.retrieve_node_output(kappa_id);
        let lambda = checkpointer.retrieve_node_output(lambda_id);
        let [dz, dkappa, dlambda] =
            B::adaptive_backward(z, kappa, lambda, grad_out, self.kind, self.lambda_grad);
        register_grads::<B, 3>(grads, parents, [dz, dkappa, dlambda]);
    }
}

/// The autodiff side of [`FusedBackend::adaptive_forward`].
pub(crate) fn autodiff_forward<B: FusedBackend, C: CheckpointStrategy>(
    z: FloatTensor<Autodiff<B, C>>,
    kappa: FloatTensor<Autodiff<B, C>>,
    lambda: FloatTensor<Autodiff<B, C>>,
    kind: AdaptiveKind,
    lambda_grad: LambdaGrad,
) -> FloatTensor<Autodiff<B, C>> {
    let op = AdaptiveBackward { kind, lambda_grad };
    let prep = op
        .prepare::<C>([z.node.clone(), kappa.node.clone(), lambda.node.clone()])
        .compute_bound()
        .stateful();
    // Primitives are reference-counted: cloning them for the forward keeps the autodiff
    // tensors whole for checkpointing.
    let out = B::adaptive_forward(
        z.primitive.clone(),
        kappa.primitive.clone(),
        lambda.primitive.clone(),
        kind,
        lambda_grad,
    );
    match prep {
        OpsKind::Tracked(mut prep) => {
            let state = (
                prep.checkpoint(&z),
                prep.checkpoint(&kappa),
                prep.checkpoint(&lambda),
            );
            prep.finish(state, out)
        }
        OpsKind::UnTracked(prep) => prep.finish(out),
    }
}

/// `Tensor`-level entry point used by the modules.
pub fn adaptive<B: FusedBackend>(
    z: Tensor<B, 4>,
    kappa: Tensor<B, 4>,
    lambda: Tensor<B, 4>,
    kind: AdaptiveKind,
    lambda_grad: LambdaGrad,
) -> Tensor<B, 4> {
    wrap(B::adaptive_forward(
        unwrap(z),
        unwrap(kappa),
        unwrap(lambda),
        kind,
        lambda_grad,
    ))
}
