//! Fused APA/AGLU kernels for the CPU backend: one pass over the input forward, one pass
//! backward (reducing κ's and λ's gradients per channel on the way), in place of the dozen
//! tensor ops — and their temporaries — of the composite implementation.
//!
//! Used for contiguous f32 tensors; anything else returns `None` and the composite runs.

use burn::backend::flex::FlexTensor;
use burn::tensor::{DType, TensorData};
use rayon::prelude::*;

use super::adaptive_op::AdaptiveKind;
use crate::config::model::LambdaGrad;

/// `z` as `[planes, plane]` with a (κ, λ) index per plane, and the parameters.
struct View<'a> {
    z: &'a [f32],
    plane: usize,
    channels: usize,
    kappa: &'a [f32],
    lambda: &'a [f32],
    shape: Vec<usize>,
}

impl View<'_> {
    /// Parameter index of plane `p` (planes run over N then C).
    fn param(&self, p: usize) -> usize {
        if self.kappa.len() == 1 {
            0
        } else {
            p % self.channels
        }
    }
}

fn f32_slice(t: &FlexTensor) -> Option<&[f32]> {
    (t.dtype() == DType::F32).then(|| t.as_slice::<f32>()).flatten()
}

fn view<'a>(z: &'a FlexTensor, kappa: &'a FlexTensor, lambda: &'a FlexTensor) -> Option<View<'a>> {
    let shape = z.layout().shape().to_vec();
    let [_, c, h, w] = <[usize; 4]>::try_from(shape.as_slice()).ok()?;
    let (kappa, lambda) = (f32_slice(kappa)?, f32_slice(lambda)?);
    let per_channel = kappa.len() == c && c > 1;
    if kappa.len() != lambda.len() || !(kappa.len() == 1 || per_channel) {
        return None;
    }
    Some(View {
        z: f32_slice(z)?,
        plane: h * w,
        channels: c,
        kappa,
        lambda,
        shape,
    })
}

/// `(log σ(u), σ(−u))` from one exponential and one logarithm: with e = exp(−|u|),
/// log σ(u) = min(u, 0) − ln(1 + e) and σ(−u) = e/(1 + e) for u ≥ 0, 1/(1 + e) otherwise.
fn log_sigmoid_and_complement(u: f32) -> (f32, f32) {
    let e = (-u.abs()).exp();
    let ls = u.min(0.0) - e.ln_1p();
    let t = if u >= 0.0 { e / (1.0 + e) } else { 1.0 / (1.0 + e) };
    (ls, t)
}

fn tensor(values: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

pub fn forward(
    z: &FlexTensor,
    kappa: &FlexTensor,
    lambda: &FlexTensor,
    kind: AdaptiveKind,
) -> Option<FlexTensor> {
    let v = view(z, kappa, lambda)?;
    let mut out = vec![0.0f32; v.z.len()];
    out.par_chunks_mut(v.plane.max(1))
        .zip(v.z.par_chunks(v.plane.max(1)))
        .enumerate()
        .for_each(|(p, (out, z))| {
            let i = v.param(p);
            let (k, l) = (v.kappa[i], v.lambda[i]);
            let (inv_l, ln_l) = (1.0 / l, l.ln());
            for (o, &z) in out.iter_mut().zip(z) {
                let (ls, _) = log_sigmoid_and_complement(k * z - ln_l);
                let p = (ls * inv_l).exp();
                *o = match kind {
                    AdaptiveKind::Apa => p,
                    AdaptiveKind::Aglu => z * p,
                };
            }
        });
    Some(tensor(out, v.shape))
}

/// `ln(1 − t) + t` given `ls = ln(1 − t)`, by its series below t = 0.1 where the two terms
/// cancel (see `adaptive_op::log1m_plus_identity`).
fn log1m_plus_identity(ls: f32, t: f32) -> f32 {
    if t < 0.1 {
        let horner = (2..=12).rev().fold(0.0f32, |acc, k| acc * t + 1.0 / k as f32);
        -(t * t * horner)
    } else {
        ls + t
    }
}

pub fn backward(
    z: &FlexTensor,
    kappa: &FlexTensor,
    lambda: &FlexTensor,
    grad: &FlexTensor,
    kind: AdaptiveKind,
    lambda_grad: LambdaGrad,
) -> Option<[FlexTensor; 3]> {
    let v = view(z, kappa, lambda)?;
    let g = f32_slice(grad)?;
    if g.len() != v.z.len() {
        return None;
    }
    let chunk = v.plane.max(1);
    let mut dz = vec![0.0f32; v.z.len()];
    // Each plane's (Σ ∂κ, Σ ∂λ), accumulated in f64 and folded per parameter below.
    let sums: Vec<(f64, f64)> = dz
        .par_chunks_mut(chunk)
        .zip(v.z.par_chunks(chunk).zip(g.par_chunks(chunk)))
        .enumerate()
        .map(|(p, (dz, (z, g)))| {
            let i = v.param(p);
            plane_backward(dz, z, g, v.kappa[i], v.lambda[i], kind, lambda_grad)
        })
        .collect();
    let mut dkappa = vec![0.0f64; v.kappa.len()];
    let mut dlambda = vec![0.0f64; v.kappa.len()];
    for (p, (dk, dl)) in sums.into_iter().enumerate() {
        let i = v.param(p);
        dkappa[i] += dk;
        dlambda[i] += dl;
    }
    let param_shape = kappa.layout().shape().to_vec();
    let to_f32 = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect::<Vec<_>>();
    Some([
        tensor(dz, v.shape),
        tensor(to_f32(dkappa), param_shape.clone()),
        tensor(to_f32(dlambda), param_shape),
    ])
}

/// With u = κz − ln λ, t = σ(−u), c = p·t/λ: ∂p/∂z = κc, ∂p/∂κ = zc,
/// ∂p/∂λ = −p·(log σ(u) + t)/λ²; AGLU multiplies by z and adds p to ∂/∂z; the reference
/// backward keeps only −zc/λ of ∂AGLU/∂λ.
fn plane_backward(
    dz: &mut [f32],
    z: &[f32],
    g: &[f32],
    k: f32,
    l: f32,
    kind: AdaptiveKind,
    lambda_grad: LambdaGrad,
) -> (f64, f64) {
    let (inv_l, ln_l) = (1.0 / l, l.ln());
    let (mut dk_sum, mut dl_sum) = (0.0f64, 0.0f64);
    for ((d, &z), &g) in dz.iter_mut().zip(z).zip(g) {
        let (ls, t) = log_sigmoid_and_complement(k * z - ln_l);
        let p = (ls * inv_l).exp();
        let c = p * t * inv_l;
        let dp_dlambda = -p * log1m_plus_identity(ls, t) * inv_l * inv_l;
        let (dz_local, dk, dl) = match kind {
            AdaptiveKind::Apa => (k * c, z * c, dp_dlambda),
            AdaptiveKind::Aglu => {
                let dl = match lambda_grad {
                    LambdaGrad::Exact => z * dp_dlambda,
                    LambdaGrad::Reference => -z * c * inv_l,
                };
                (p + k * z * c, z * z * c, dl)
            }
        };
        *d = g * dz_local;
        dk_sum += f64::from(g * dk);
        dl_sum += f64::from(g * dl);
    }
    (dk_sum, dl_sum)
}
