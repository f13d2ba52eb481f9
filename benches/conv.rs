//! The 3×3 convolutions of a CIFAR ResNet (batch 128, stride 1, padding 1, no bias), forward
//! and backward (input and weight gradients) on the CPU backend: the fused convolution op
//! against Burn's own `conv2d` and its backward ops, in the same run.
//!
//! Run: `cargo bench --bench conv`. Prints the median of 10 timed repetitions per layer and
//! their ratio; `bench/pytorch-compare.sh` times the same layers in PyTorch.

use std::time::{Duration, Instant};

use burn::backend::Flex;
use burn::tensor::ops::{ConvOptions, FloatTensor, ModuleOps};
use burn::tensor::{Distribution, Tensor, TensorPrimitive};
use repro::nn::ops::conv::composite_backward;
use repro::nn::FusedBackend;

mod common;

const BATCH: usize = 128;

fn main() {
    repro::backend::keep_freed_memory();
    println!("3×3 convolution forward + backward, batch {BATCH}, on the CPU (median of 10):");
    for (channels, size) in [(16, 32), (32, 16), (64, 8)] {
        let device = Default::default();
        let random = |shape: [usize; 4]| -> FloatTensor<Flex> {
            Tensor::<Flex, 4>::random(shape, Distribution::Normal(0.0, 1.0), &device)
                .into_primitive()
                .tensor()
        };
        let x = random([BATCH, channels, size, size]);
        let w = random([channels, channels, 3, 3]);
        let g = random([BATCH, channels, size, size]);
        let options = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
        let run = |fused: bool| {
            let (x, w, g, options) = (x.clone(), w.clone(), g.clone(), options.clone());
            move || -> Duration {
                let start = Instant::now();
                let [dx, _] = if fused {
                    let _ = Flex::fused_conv2d(x.clone(), w.clone(), options.clone());
                    Flex::fused_conv2d_backward(x.clone(), w.clone(), g.clone(), options.clone())
                } else {
                    let _ = Flex::conv2d(x.clone(), w.clone(), None, options.clone());
                    composite_backward::<Flex>(x.clone(), w.clone(), g.clone(), options.clone())
                };
                // Reading one value forces any deferred computation to finish inside the timing.
                let dx = Tensor::<Flex, 4>::from_primitive(TensorPrimitive::Float(dx));
                let _ = dx.slice([0..1, 0..1, 0..1, 0..1]).into_scalar();
                start.elapsed()
            }
        };
        let burn = common::median(2, 10, run(false));
        println!("  {channels} ch, {size}×{size}:");
        common::report("Burn conv2d + backward", burn, burn);
        common::report("fused conv op", common::median(2, 10, run(true)), burn);
    }
}
