//! AGLU against ReLU (and GELU, SiLU for context): one forward + backward of a
//! `[128, 64, 32, 32]` activation layer on the CPU backend with autodiff.
//!
//! Run: `cargo bench --bench activation`. Prints the median of several timed repetitions per
//! function and each one's ratio to ReLU measured in the same run.

use std::time::{Duration, Instant};

mod common;
use common::report;

use burn::backend::{Autodiff, Flex};
use burn::tensor::activation::{gelu, relu, silu};
use burn::tensor::TensorPrimitive;
use burn::tensor::{Distribution, Tensor};
use repro::nn::ops::adaptive::{adaptive, composite_backward, composite_forward};
use repro::nn::ops::AdaptiveKind;
use repro::nn::ops::LambdaGrad;
use repro::nn::FusedBackend;

type B = Autodiff<Flex>;
const SHAPE: [usize; 4] = [128, 64, 32, 32];
const WARMUP: usize = 2;
const REPS: usize = 10;

fn main() {
    repro::backend::keep_freed_memory();
    let device = Default::default();
    let x = Tensor::<B, 4>::random(SHAPE, Distribution::Normal(0.0, 1.0), &device);
    let kappa = Tensor::<B, 4>::full([1, 1, 1, 1], 1.0, &device).require_grad();
    let lambda = Tensor::<B, 4>::full([1, 1, 1, 1], 0.5, &device).require_grad();

    let aglu = |grad: LambdaGrad| {
        let (kappa, lambda) = (kappa.clone(), lambda.clone());
        move |x: Tensor<B, 4>| adaptive(x, kappa.clone(), lambda.clone(), AdaptiveKind::Aglu, grad)
    };
    let baseline = median_of(|| step(&x, relu));
    println!(
        "[128,64,32,32] forward+backward on {} threads (median of {REPS}):",
        rayon_threads()
    );
    report("relu", baseline, baseline);
    report("gelu", median_of(|| step(&x, gelu)), baseline);
    report("silu", median_of(|| step(&x, silu)), baseline);
    report(
        "aglu (exact dλ)",
        median_of(|| step(&x, aglu(LambdaGrad::Exact))),
        baseline,
    );
    report(
        "aglu (reference dλ)",
        median_of(|| step(&x, aglu(LambdaGrad::Reference))),
        baseline,
    );

    // The op alone, without autodiff: the fused CPU kernel against the composite tensor ops
    // it replaces (the "before" of issue 8).
    let z = x.clone().inner().into_primitive().tensor();
    let g = Tensor::<Flex, 4>::ones(SHAPE, &device).into_primitive().tensor();
    let k = kappa.clone().inner().into_primitive().tensor();
    let l = lambda.clone().inner().into_primitive().tensor();
    let op = |fused: bool| {
        let (z, g, k, l) = (z.clone(), g.clone(), k.clone(), l.clone());
        move || {
            let start = Instant::now();
            let (kind, grad) = (AdaptiveKind::Aglu, LambdaGrad::Exact);
            let [dz, _, _] = if fused {
                let _ = Flex::adaptive_forward(z.clone(), k.clone(), l.clone(), kind, grad);
                Flex::adaptive_backward(z.clone(), k.clone(), l.clone(), g.clone(), kind, grad)
            } else {
                let _ = composite_forward::<Flex>(z.clone(), k.clone(), l.clone(), kind, grad);
                composite_backward::<Flex>(z.clone(), k.clone(), l.clone(), g.clone(), kind, grad)
            };
            let dz = Tensor::<Flex, 4>::from_primitive(TensorPrimitive::Float(dz));
            let _ = dz.slice([0..1, 0..1, 0..1, 0..1]).into_scalar();
            start.elapsed()
        }
    };
    println!("AGLU op alone (forward + backward, no autodiff):");
    let composite = median_of(op(false));
    report("composite tensor ops", composite, composite);
    report("fused CPU kernel", median_of(op(true)), composite);
}

/// One forward + backward; the loss is a plain sum so the gradient flowing back is ones.
fn step(x: &Tensor<B, 4>, f: impl Fn(Tensor<B, 4>) -> Tensor<B, 4>) -> Duration {
    let input = x.clone().detach().require_grad();
    let start = Instant::now();
    let grads = f(input.clone()).sum().backward();
    let dx = input.grad(&grads).expect("tracked");
    // Reading one value forces any deferred computation to finish inside the timing.
    let _ = dx.slice([0..1, 0..1, 0..1, 0..1]).into_scalar();
    start.elapsed()
}

fn median_of(run: impl FnMut() -> Duration) -> Duration {
    common::median(WARMUP, REPS, run)
}

fn rayon_threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}
