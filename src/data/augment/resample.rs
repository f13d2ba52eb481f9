//! Separable antialiased bilinear (triangle-filter) resampling of an RGB region, as PIL's
//! `resize(..., BILINEAR, box=...)`: when shrinking, the filter widens with the scale so every
//! source pixel contributes (no aliasing); the crop box is read in place, never copied.

use image::RgbImage;

/// Contributions of source pixels to one output pixel along one axis.
struct Taps {
    start: usize,
    weights: Vec<f32>,
}

fn axis_taps(src_len: usize, box_start: f64, box_len: f64, out_len: usize) -> Vec<Taps> {
    let scale = box_len / out_len as f64;
    let support = scale.max(1.0);
    (0..out_len)
        .map(|i| {
            let center = box_start + (i as f64 + 0.5) * scale;
            let lo = (center - support).floor().max(0.0) as usize;
            let hi = ((center + support).ceil() as usize).min(src_len).max(lo + 1);
            let raw: Vec<f64> = (lo..hi)
                .map(|x| (1.0 - ((x as f64 + 0.5 - center) / support).abs()).max(0.0))
                .collect();
            let sum: f64 = raw.iter().sum();
            let weights = if sum > 0.0 {
                raw.iter().map(|w| (w / sum) as f32).collect()
            } else {
                // Degenerate box thinner than a pixel: take the nearest source pixel.
                let mut w = vec![0.0; raw.len()];
                w[0] = 1.0;
                w
            };
            Taps {
                start: lo.min(src_len - 1),
                weights,
            }
        })
        .collect()
}

/// Resamples the box (x, y, width, height), in source pixels, to `out_w`x`out_h`.
pub fn resample(img: &RgbImage, region: [f64; 4], out_w: usize, out_h: usize) -> RgbImage {
    let (sw, sh) = (img.width() as usize, img.height() as usize);
    if sw == 0 || sh == 0 || out_w == 0 || out_h == 0 {
        return RgbImage::new(out_w as u32, out_h as u32);
    }
    let xt = axis_taps(sw, region[0], region[2], out_w);
    let yt = axis_taps(sh, region[1], region[3], out_h);
    let row_lo = yt.iter().map(|t| t.start).min().unwrap_or(0);
    let row_hi = yt
        .iter()
        .map(|t| t.start + t.weights.len())
        .max()
        .unwrap_or(0)
        .min(sh);
    let src = img.as_raw();
    // Horizontal pass over just the rows the vertical pass needs.
    let mut mid = vec![0f32; (row_hi - row_lo) * out_w * 3];
    for y in row_lo..row_hi {
        let row = &src[y * sw * 3..(y + 1) * sw * 3];
        let out = &mut mid[(y - row_lo) * out_w * 3..][..out_w * 3];
        for (o, t) in out.chunks_exact_mut(3).zip(&xt) {
            let mut acc = [0f32; 3];
            for (k, w) in t.weights.iter().enumerate() {
                let p = &row[(t.start + k) * 3..][..3];
                acc[0] += w * f32::from(p[0]);
                acc[1] += w * f32::from(p[1]);
                acc[2] += w * f32::from(p[2]);
            }
            o.copy_from_slice(&acc);
        }
    }
    let mut out = vec![0u8; out_w * out_h * 3];
    for (orow, t) in out.chunks_exact_mut(out_w * 3).zip(&yt) {
        let mut acc = vec![0f32; out_w * 3];
        for (k, w) in t.weights.iter().enumerate() {
            let m = &mid[(t.start + k - row_lo) * out_w * 3..][..out_w * 3];
            for (a, v) in acc.iter_mut().zip(m) {
                *a += w * v;
            }
        }
        for (o, a) in orow.iter_mut().zip(acc) {
            *o = a.round().clamp(0.0, 255.0) as u8;
        }
    }
    RgbImage::from_raw(out_w as u32, out_h as u32, out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_and_constant() {
        let img = RgbImage::from_fn(7, 5, |x, y| image::Rgb([x as u8 * 30, y as u8 * 40, 9]));
        assert_eq!(resample(&img, [0.0, 0.0, 7.0, 5.0], 7, 5), img);
        let flat = RgbImage::from_pixel(40, 30, image::Rgb([10, 200, 77]));
        let small = resample(&flat, [3.0, 2.0, 31.0, 17.0], 9, 4);
        assert!(small.pixels().all(|p| p.0 == [10, 200, 77]));
        let big = resample(&flat, [0.0, 0.0, 40.0, 30.0], 97, 61);
        assert!(big.pixels().all(|p| p.0 == [10, 200, 77]));
    }

    #[test]
    fn halving_averages_pairs() {
        let img = RgbImage::from_fn(8, 2, |x, _| image::Rgb([if x % 2 == 0 { 0 } else { 200 }; 3]));
        let half = resample(&img, [0.0, 0.0, 8.0, 2.0], 4, 1);
        // Interior pixels see a symmetric window over alternating 0/200: the mean, 100.
        assert_eq!(half.get_pixel(1, 0).0, [100; 3]);
        assert_eq!(half.get_pixel(2, 0).0, [100; 3]);
    }
}
