//! BatchNorm kernels for the CPU backend (contiguous f32; anything else returns `None` and
//! the composite ops run). Channels are processed in parallel, sums accumulate in f64.

use burn::backend::flex::FlexTensor;
use burn::tensor::{DType, TensorData};
use rayon::prelude::*;

fn f32_slice(t: &FlexTensor) -> Option<&[f32]> {
    (t.dtype() == DType::F32).then(|| t.as_slice::<f32>()).flatten()
}

/// `x` as `[n, c, plane]`.
struct Nchw<'a> {
    x: &'a [f32],
    n: usize,
    c: usize,
    plane: usize,
    shape: Vec<usize>,
}

impl<'a> Nchw<'a> {
    fn of(x: &'a FlexTensor) -> Option<Self> {
        let shape = x.layout().shape().to_vec();
        let [n, c, h, w] = <[usize; 4]>::try_from(shape.as_slice()).ok()?;
        Some(Self {
            x: f32_slice(x)?,
            n,
            c,
            plane: h * w,
            shape,
        })
    }

    /// The planes of channel `c`, one per image.
    fn planes(&self, data: &'a [f32], c: usize) -> impl Iterator<Item = &'a [f32]> + '_ {
        (0..self.n).map(move |i| &data[(i * self.c + c) * self.plane..][..self.plane])
    }

    fn count(&self) -> f64 {
        (self.n * self.plane) as f64
    }
}

fn tensor(values: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

fn channel_params(c: usize, params: [&FlexTensor; 2]) -> Option<[&[f32]; 2]> {
    let [a, b] = params.map(f32_slice);
    let (a, b) = (a?, b?);
    (a.len() == c && b.len() == c).then_some([a, b])
}

/// Elements summed side by side within a plane, in f32 (a plane is at most a few thousand
/// elements); the lanes and the planes are then added in f64. One running sum per plane would
/// serialise the loop on the add's latency.
const LANES: usize = 16;

/// `Σ f(a, b)` over two equally long planes, both components of `f` at once.
#[inline(always)]
fn plane_sums(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> [f32; 2]) -> [f64; 2] {
    let mut lanes = [[0.0f32; LANES]; 2];
    let body = a.len() - a.len() % LANES;
    for (a, b) in a[..body].chunks_exact(LANES).zip(b[..body].chunks_exact(LANES)) {
        for j in 0..LANES {
            let [u, v] = f(a[j], b[j]);
            lanes[0][j] += u;
            lanes[1][j] += v;
        }
    }
    for (&a, &b) in a[body..].iter().zip(&b[body..]) {
        let [u, v] = f(a, b);
        lanes[0][0] += u;
        lanes[1][0] += v;
    }
    lanes.map(|lane| lane.iter().map(|&x| f64::from(x)).sum())
}

/// `Σ f(a, b)` over every plane of channel `c` of `a` and `b`.
fn channel_sums(v: &Nchw, a: &[f32], b: &[f32], c: usize, f: impl Fn(f32, f32) -> [f32; 2]) -> [f64; 2] {
    v.planes(a, c)
        .zip(v.planes(b, c))
        .fold([0.0; 2], |[s, t], (a, b)| {
            let [u, w] = plane_sums(a, b, &f);
            [s + u, t + w]
        })
}

pub fn stats(x: &FlexTensor) -> Option<[FlexTensor; 2]> {
    let v = Nchw::of(x)?;
    let (mean, var): (Vec<f32>, Vec<f32>) = (0..v.c)
        .into_par_iter()
        .map(|c| {
            let [sum, _] = channel_sums(&v, v.x, v.x, c, |x, _| [x, 0.0]);
            let mean = (sum / v.count()) as f32;
            let [squares, _] = channel_sums(&v, v.x, v.x, c, |x, _| [(x - mean) * (x - mean), 0.0]);
            (mean, (squares / v.count()) as f32)
        })
        .unzip();
    Some([tensor(mean, vec![v.c]), tensor(var, vec![v.c])])
}

/// Channel `c`'s normalisation as `x·scale + shift`, the same expression forward and backward so
/// that the backward's ReLU mask is exactly the forward's.
fn affine(weight: &[f32], bias: &[f32], [mean, var]: [&[f32]; 2], epsilon: f64, c: usize) -> (f32, f32) {
    let scale = weight[c] / (var[c] + epsilon as f32).sqrt();
    (scale, bias[c] - mean[c] * scale)
}

pub fn normalize(
    x: &FlexTensor,
    weight: &FlexTensor,
    bias: &FlexTensor,
    [mean, var]: [&FlexTensor; 2],
    epsilon: f64,
    relu: bool,
) -> Option<FlexTensor> {
    let v = Nchw::of(x)?;
    let [weight, bias] = channel_params(v.c, [weight, bias])?;
    let stats = channel_params(v.c, [mean, var])?;
    let mut out = vec![0.0f32; v.x.len()];
    let chunk = v.plane.max(1);
    out.par_chunks_mut(chunk)
        .zip(v.x.par_chunks(chunk))
        .enumerate()
        .for_each(|(p, (out, x))| {
            let (scale, shift) = affine(weight, bias, stats, epsilon, p % v.c);
            for (o, &x) in out.iter_mut().zip(x) {
                let y = x * scale + shift;
                // `y <= 0` rather than `max`, which would turn NaN into 0.
                *o = if relu && y <= 0.0 { 0.0 } else { y };
            }
        });
    Some(tensor(out, v.shape))
}

pub fn backward(
    x: &FlexTensor,
    weight: &FlexTensor,
    bias: &FlexTensor,
    [mean, var]: [&FlexTensor; 2],
    grad: &FlexTensor,
    epsilon: f64,
    relu: bool,
) -> Option<[FlexTensor; 3]> {
    let v = Nchw::of(x)?;
    let dy = f32_slice(grad)?;
    let [weight, bias] = channel_params(v.c, [weight, bias])?;
    let stats @ [mean, var] = channel_params(v.c, [mean, var])?;
    if dy.len() != v.x.len() {
        return None;
    }
    let inv_std: Vec<f32> = var.iter().map(|&s| 1.0 / (s + epsilon as f32).sqrt()).collect();
    // The gradient reaching the normalisation: dy, or dy where the ReLU after it passed.
    let masked = |c: usize| {
        let (scale, shift) = affine(weight, bias, stats, epsilon, c);
        move |x: f32, g: f32| if relu && x * scale + shift <= 0.0 { 0.0 } else { g }
    };
    // Per channel: Σ dy and Σ dy·x̂.
    let (db, dw): (Vec<f64>, Vec<f64>) = (0..v.c)
        .into_par_iter()
        .map(|c| {
            let (m, s, mask) = (mean[c], inv_std[c], masked(c));
            let [db, dw] = channel_sums(&v, v.x, dy, c, |x, g| {
                let g = mask(x, g);
                [g, g * (x - m) * s]
            });
            (db, dw)
        })
        .unzip();
    let mut dx = vec![0.0f32; v.x.len()];
    let chunk = v.plane.max(1);
    let count = v.count();
    dx.par_chunks_mut(chunk)
        .zip(v.x.par_chunks(chunk).zip(dy.par_chunks(chunk)))
        .enumerate()
        .for_each(|(p, (dx, (x, g)))| {
            let c = p % v.c;
            let (m, s, mask) = (mean[c], inv_std[c], masked(c));
            let (mean_g, mean_gx) = ((db[c] / count) as f32, (dw[c] / count) as f32);
            let k = weight[c] * s;
            for ((d, &x), &g) in dx.iter_mut().zip(x).zip(g) {
                *d = k * (mask(x, g) - mean_g - (x - m) * s * mean_gx);
            }
        });
    let to_f32 = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect::<Vec<_>>();
    Some([
        tensor(dx, v.shape),
        tensor(to_f32(dw), vec![v.c]),
        tensor(to_f32(db), vec![v.c]),
    ])
}
