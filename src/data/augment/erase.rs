//! Occlusion augmentations: Cutout (on pixels, before normalisation, as the reference) and
//! random erasing (on the normalised CHW tensor, as torchvision).

use image::RgbImage;
use rand::Rng;

/// Cutout (DeVries & Taylor) as in the reference: `holes` squares of side `length` centred at
/// uniform positions, clipped to the image, set to zero.
pub fn cutout(img: &mut RgbImage, length: usize, holes: usize, rng: &mut impl Rng) {
    let (w, h) = (img.width() as i64, img.height() as i64);
    let half = (length / 2) as i64;
    for _ in 0..holes {
        let cy = rng.random_range(0..h);
        let cx = rng.random_range(0..w);
        let (y1, y2) = ((cy - half).clamp(0, h), (cy + half).clamp(0, h));
        let (x1, x2) = ((cx - half).clamp(0, w), (cx + half).clamp(0, w));
        for y in y1..y2 {
            for x in x1..x2 {
                img.put_pixel(x as u32, y as u32, image::Rgb([0, 0, 0]));
            }
        }
    }
}

/// torchvision RandomErasing(p, scale=(0.02, 0.33), ratio=(0.3, 3.3), value=0) on one CHW
/// image of `channels`x`h`x`w`.
pub fn random_erasing(chw: &mut [f32], channels: usize, h: usize, w: usize, p: f64, rng: &mut impl Rng) {
    if p <= 0.0 || !rng.random_bool(p.min(1.0)) {
        return;
    }
    let area = (h * w) as f64;
    let (log_lo, log_hi) = (0.3f64.ln(), 3.3f64.ln());
    for _ in 0..10 {
        let target = area * rng.random_range(0.02..=0.33);
        let aspect = rng.random_range(log_lo..=log_hi).exp();
        let eh = (target * aspect).sqrt().round() as usize;
        let ew = (target / aspect).sqrt().round() as usize;
        if eh == 0 || ew == 0 || eh >= h || ew >= w {
            continue;
        }
        let y0 = rng.random_range(0..=h - eh);
        let x0 = rng.random_range(0..=w - ew);
        for c in 0..channels {
            for y in y0..y0 + eh {
                let row = (c * h + y) * w;
                chw[row + x0..row + x0 + ew].fill(0.0);
            }
        }
        return;
    }
}
