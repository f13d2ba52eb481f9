//! Fused APA/AGLU kernels for the CPU backend: one pass over the input forward, one pass
//! backward (reducing κ's and λ's gradients per channel on the way), in place of the dozen
//! tensor ops — and their temporaries — of the composite implementation.
//!
//! Used for contiguous f32 tensors; anything else returns `None` and the composite runs.

use burn::backend::flex::FlexTensor;
use burn::tensor::{DType, TensorData};
use rayon::prelude::*;

use super::{AdaptiveKind, LambdaGrad};

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
#[inline(always)]
fn log_sigmoid_and_complement(u: f32) -> (f32, f32) {
    let e = exp(-u.abs());
    let ls = u.min(0.0) - ln_1p_unit(e);
    let t = if u >= 0.0 { e } else { 1.0 } / (1.0 + e);
    (ls, t)
}

// The kernels' transcendental functions, branch-free so that the loops vectorise (libm's are
// calls, one element at a time, and were most of the AGLU layer's time). Both are within a few
// f32 ulps of libm over the ranges used (tested below). Polynomials use `mul_add`, one FMA
// instruction on every CPU the dispatched kernels target (x86-64-v3 and later, aarch64).

/// `eˣ` by the usual reduction x = n·ln 2 + r, |r| ≤ ln 2 / 2, a degree-7 polynomial for eʳ and
/// 2ⁿ built in the exponent bits; 0 below the smallest normal result, ∞ above the largest.
#[inline(always)]
fn exp(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let n = (x * std::f32::consts::LOG2_E)
        .round_ties_even()
        .clamp(-126.0, 127.0);
    let r = x - n * LN2_HI - n * LN2_LO;
    // Taylor coefficients 1/k!, k = 7 … 2.
    let poly = [1.0 / 5040.0, 1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5]
        .iter()
        .fold(0.0f32, |acc, &c| acc.mul_add(r, c));
    let er = (r * r).mul_add(poly, r) + 1.0;
    // 2ⁿ: the biased exponent n + 127 ∈ [1, 254] sits in the low mantissa bits of 2²³ + n + 127
    // (a float-to-int cast here would be checked per element and not vectorise).
    let biased = (8_388_608.0 + 127.0 + n).to_bits();
    let y = er * f32::from_bits(biased << 23);
    if x < -87.33 {
        0.0
    } else if x > 88.72 {
        f32::INFINITY
    } else {
        y
    }
}

/// `ln(1 + e)` for e ∈ [0, 1], as 2·atanh(s) with s = e/(2 + e) ≤ 1/3: the odd series to s¹⁵
/// is below f32 resolution there, and small e keeps full relative precision.
#[inline(always)]
fn ln_1p_unit(e: f32) -> f32 {
    let s = e / (2.0 + e);
    let s2 = s * s;
    let series = [15.0f32, 13.0, 11.0, 9.0, 7.0, 5.0, 3.0]
        .iter()
        .fold(0.0f32, |acc, &k| acc.mul_add(s2, 1.0 / k))
        * s2;
    2.0 * s * (1.0 + series)
}

/// One plane's κ, with 1/λ and ln λ.
#[derive(Clone, Copy)]
struct Params {
    kappa: f32,
    inv_lambda: f32,
    ln_lambda: f32,
}

impl Params {
    fn new(kappa: f32, lambda: f32) -> Self {
        Self {
            kappa,
            inv_lambda: 1.0 / lambda,
            ln_lambda: lambda.ln(),
        }
    }

    /// `(p, log σ(u), σ(−u))` at z.
    #[inline(always)]
    fn gate(self, z: f32) -> (f32, f32, f32) {
        let (ls, t) = log_sigmoid_and_complement(self.kappa * z - self.ln_lambda);
        (exp(ls * self.inv_lambda), ls, t)
    }
}

// The per-plane loops run through `pulp`'s dispatch, which compiles them once per instruction
// set (AVX2, AVX-512) and picks one at run time; `with_simd` must be inlined into it.

struct PlaneForward<'a> {
    out: &'a mut [f32],
    z: &'a [f32],
    params: Params,
    kind: AdaptiveKind,
}

impl pulp::WithSimd for PlaneForward<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        for (o, &z) in self.out.iter_mut().zip(self.z) {
            let (p, _, _) = self.params.gate(z);
            *o = match self.kind {
                AdaptiveKind::Apa => p,
                AdaptiveKind::Aglu => z * p,
            };
        }
    }
}

struct PlaneBackward<'a> {
    dz: &'a mut [f32],
    z: &'a [f32],
    g: &'a [f32],
    params: Params,
    kind: AdaptiveKind,
    lambda_grad: LambdaGrad,
}

impl pulp::WithSimd for PlaneBackward<'_> {
    type Output = (f64, f64);

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) -> (f64, f64) {
        plane_backward(self)
    }
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
            let params = Params::new(v.kappa[i], v.lambda[i]);
            pulp::Arch::new().dispatch(PlaneForward { out, z, params, kind })
        });
    Some(tensor(out, v.shape))
}

/// `ln(1 − t) + t` given `ls = ln(1 − t)`, by its series below t = 0.1 where the two terms
/// cancel (see `adaptive::log1m_plus_identity`).
#[inline(always)]
fn log1m_plus_identity(ls: f32, t: f32) -> f32 {
    if t < 0.1 {
        let horner = (2..=12)
            .rev()
            .fold(0.0f32, |acc, k| acc.mul_add(t, 1.0 / k as f32));
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
            let params = Params::new(v.kappa[i], v.lambda[i]);
            pulp::Arch::new().dispatch(PlaneBackward {
                dz,
                z,
                g,
                params,
                kind,
                lambda_grad,
            })
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

/// Elements processed side by side, each lane with its own κ and λ gradient sums, so that the
/// loop vectorises (one running sum would serialise it).
const LANES: usize = 16;

/// With u = κz − ln λ, t = σ(−u), c = p·t/λ: ∂p/∂z = κc, ∂p/∂κ = zc,
/// ∂p/∂λ = −p·(log σ(u) + t)/λ²; AGLU multiplies by z and adds p to ∂/∂z; the reference
/// backward keeps only −zc/λ of ∂AGLU/∂λ. Returns g times (∂/∂z, ∂/∂κ, ∂/∂λ).
#[inline(always)]
fn element_backward(z: f32, g: f32, params: Params, kind: AdaptiveKind, lambda_grad: LambdaGrad) -> [f32; 3] {
    let (k, inv_l) = (params.kappa, params.inv_lambda);
    let (p, ls, t) = params.gate(z);
    let c = p * t * inv_l;
    let dp_dlambda = -p * log1m_plus_identity(ls, t) * inv_l * inv_l;
    let [dz, dk, dl] = match kind {
        AdaptiveKind::Apa => [k * c, z * c, dp_dlambda],
        AdaptiveKind::Aglu => {
            let dl = match lambda_grad {
                LambdaGrad::Exact => z * dp_dlambda,
                LambdaGrad::Reference => -z * c * inv_l,
            };
            [p + k * z * c, z * z * c, dl]
        }
    };
    [g * dz, g * dk, g * dl]
}

/// One plane's input gradient, and its (Σ ∂κ, Σ ∂λ).
#[inline(always)]
fn plane_backward(plane: PlaneBackward) -> (f64, f64) {
    let PlaneBackward {
        dz,
        z,
        g,
        params,
        kind,
        lambda_grad,
    } = plane;
    let (mut dk_lanes, mut dl_lanes) = ([0.0f32; LANES], [0.0f32; LANES]);
    let tail = dz.len() - dz.len() % LANES;
    let (dz_body, dz_tail) = dz.split_at_mut(tail);
    for (d, (z, g)) in dz_body
        .chunks_exact_mut(LANES)
        .zip(z.chunks_exact(LANES).zip(g.chunks_exact(LANES)))
    {
        for j in 0..LANES {
            let [dz, dk, dl] = element_backward(z[j], g[j], params, kind, lambda_grad);
            d[j] = dz;
            dk_lanes[j] += dk;
            dl_lanes[j] += dl;
        }
    }
    for ((d, &z), &g) in dz_tail.iter_mut().zip(&z[tail..]).zip(&g[tail..]) {
        let [dz, dk, dl] = element_backward(z, g, params, kind, lambda_grad);
        *d = dz;
        dk_lanes[0] += dk;
        dl_lanes[0] += dl;
    }
    let sum = |lanes: [f32; LANES]| lanes.iter().map(|&x| f64::from(x)).sum();
    (sum(dk_lanes), sum(dl_lanes))
}

#[cfg(test)]
mod tests {
    use super::{exp, ln_1p_unit};

    fn ulps(a: f32, b: f32) -> f32 {
        (a - b).abs() / (b.abs() * f32::EPSILON).max(f32::MIN_POSITIVE)
    }

    #[test]
    fn exp_is_within_a_few_ulps_of_libm_and_saturates() {
        let worst = (0..=200_000)
            .map(|i| -87.0 + 175.5 * i as f32 / 200_000.0)
            .map(|x| ulps(exp(x), x.exp()))
            .fold(0.0, f32::max);
        assert!(worst <= 2.0, "exp off by {worst} ulps");
        assert_eq!(exp(-100.0), 0.0);
        assert_eq!(exp(-1e30), 0.0);
        assert_eq!(exp(100.0), f32::INFINITY);
        assert_eq!(exp(0.0), 1.0);
        assert!(exp(f32::NAN).is_nan());
    }

    #[test]
    fn ln_1p_keeps_relative_precision_down_to_tiny_arguments() {
        let worst = (0..=100_000)
            .map(|i| i as f32 / 100_000.0)
            .chain((1..=38).map(|p| 10f32.powi(-p)))
            .map(|e| ulps(ln_1p_unit(e), e.ln_1p()))
            .fold(0.0, f32::max);
        assert!(worst <= 3.0, "ln_1p off by {worst} ulps");
        assert_eq!(ln_1p_unit(0.0), 0.0);
    }
}
