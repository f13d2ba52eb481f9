//! The image operations of AutoAugment/RandAugment, following PIL/torchvision semantics
//! (bilinear sampling, zero fill for geometric operations).

use image::RgbImage;

/// One operation with its magnitude already resolved (signed where the op is symmetric).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    Identity,
    ShearX(f32),
    ShearY(f32),
    /// Pixels.
    TranslateX(f32),
    /// Pixels.
    TranslateY(f32),
    /// Degrees, counter-clockwise.
    Rotate(f32),
    Brightness(f32),
    Color(f32),
    Contrast(f32),
    Sharpness(f32),
    /// Bits kept.
    Posterize(u8),
    /// Threshold.
    Solarize(f32),
    AutoContrast,
    Equalize,
    Invert,
}

/// Applies an operation in place.
pub fn apply(img: &mut RgbImage, op: Op) {
    match op {
        Op::Identity => {}
        // Matrices map output to source pixels, hence the negated forward parameters.
        Op::ShearX(m) => affine(img, [1.0, -m, 0.0, 0.0, 1.0, 0.0], false),
        Op::ShearY(m) => affine(img, [1.0, 0.0, 0.0, -m, 1.0, 0.0], false),
        Op::TranslateX(t) => affine(img, [1.0, 0.0, -t, 0.0, 1.0, 0.0], false),
        Op::TranslateY(t) => affine(img, [1.0, 0.0, 0.0, 0.0, 1.0, -t], false),
        Op::Rotate(deg) => {
            let (s, c) = deg.to_radians().sin_cos();
            affine(img, [c, -s, 0.0, s, c, 0.0], true)
        }
        Op::Brightness(f) => blend_with(img, f, |_| [0.0; 3]),
        Op::Color(f) => blend_with(img, f, |p| [gray(p); 3]),
        Op::Contrast(f) => {
            let mean = mean_gray(img);
            blend_with(img, f, |_| [mean; 3])
        }
        Op::Sharpness(f) => sharpness(img, f),
        Op::Posterize(bits) => {
            let mask = if bits >= 8 { 0xFF } else { !(0xFFu8 >> bits) };
            map_channels(img, |v| v & mask)
        }
        Op::Solarize(t) => map_channels(img, |v| if f32::from(v) >= t { 255 - v } else { v }),
        Op::AutoContrast => autocontrast(img),
        Op::Equalize => equalize(img),
        Op::Invert => map_channels(img, |v| 255 - v),
    }
}

fn map_channels(img: &mut RgbImage, f: impl Fn(u8) -> u8) {
    for v in img.iter_mut() {
        *v = f(*v);
    }
}

fn gray(p: [u8; 3]) -> f32 {
    // ITU-R 601-2 luma, as PIL's convert("L").
    (f32::from(p[0]) * 299.0 + f32::from(p[1]) * 587.0 + f32::from(p[2]) * 114.0) / 1000.0
}

fn mean_gray(img: &RgbImage) -> f32 {
    let n = (img.width() * img.height()).max(1) as f32;
    let sum: f32 = img.pixels().map(|p| gray(p.0).floor()).sum();
    (sum / n).round()
}

/// PIL ImageEnhance: out = degenerate + f * (img - degenerate).
fn blend_with(img: &mut RgbImage, f: f32, degenerate: impl Fn([u8; 3]) -> [f32; 3]) {
    for p in img.pixels_mut() {
        let d = degenerate(p.0);
        for (v, d) in p.0.iter_mut().zip(d) {
            *v = (d + f * (f32::from(*v) - d)).round().clamp(0.0, 255.0) as u8;
        }
    }
}

fn sharpness(img: &mut RgbImage, f: f32) {
    // PIL's SMOOTH kernel [[1,1,1],[1,5,1],[1,1,1]]/13 on the interior; borders unchanged.
    let (w, h) = img.dimensions();
    if w < 3 || h < 3 {
        return;
    }
    let src = img.clone();
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let mut acc = [0f32; 3];
            for dy in 0..3 {
                for dx in 0..3 {
                    let k = if dx == 1 && dy == 1 { 5.0 } else { 1.0 };
                    let p = src.get_pixel(x + dx - 1, y + dy - 1).0;
                    for c in 0..3 {
                        acc[c] += k * f32::from(p[c]);
                    }
                }
            }
            let p = img.get_pixel_mut(x, y);
            for (v, a) in p.0.iter_mut().zip(acc) {
                let d = (a / 13.0).round();
                *v = (d + f * (f32::from(*v) - d)).round().clamp(0.0, 255.0) as u8;
            }
        }
    }
}

fn autocontrast(img: &mut RgbImage) {
    for c in 0..3 {
        let (lo, hi) = img
            .pixels()
            .fold((255u8, 0u8), |(lo, hi), p| (lo.min(p.0[c]), hi.max(p.0[c])));
        if hi > lo {
            let scale = 255.0 / f32::from(hi - lo);
            for p in img.pixels_mut() {
                p.0[c] = ((f32::from(p.0[c] - lo)) * scale).round().clamp(0.0, 255.0) as u8;
            }
        }
    }
}

fn equalize(img: &mut RgbImage) {
    // PIL ImageOps.equalize, per channel.
    for c in 0..3 {
        let mut hist = [0usize; 256];
        for p in img.pixels() {
            hist[usize::from(p.0[c])] += 1;
        }
        let nonzero: Vec<usize> = hist.iter().copied().filter(|&n| n > 0).collect();
        if nonzero.len() <= 1 {
            continue;
        }
        let step = (nonzero.iter().sum::<usize>() - nonzero[nonzero.len() - 1]) / 255;
        if step == 0 {
            continue;
        }
        let mut lut = [0u8; 256];
        let mut n = step / 2;
        for (i, slot) in lut.iter_mut().enumerate() {
            *slot = (n / step).min(255) as u8;
            n += hist[i];
        }
        for p in img.pixels_mut() {
            p.0[c] = lut[usize::from(p.0[c])];
        }
    }
}

/// Inverse-maps every output pixel through `m` (src = m * dst, 2x3), bilinear, zero fill.
/// With `centered`, coordinates are taken relative to the image centre (rotation).
fn affine(img: &mut RgbImage, m: [f32; 6], centered: bool) {
    let (w, h) = img.dimensions();
    let (cx, cy) = if centered {
        (w as f32 * 0.5, h as f32 * 0.5)
    } else {
        (0.0, 0.0)
    };
    let src = img.clone();
    for y in 0..h {
        for x in 0..w {
            let (dx, dy) = (x as f32 + 0.5 - cx, y as f32 + 0.5 - cy);
            let sx = m[0] * dx + m[1] * dy + m[2] + cx - 0.5;
            let sy = m[3] * dx + m[4] * dy + m[5] + cy - 0.5;
            img.put_pixel(x, y, image::Rgb(bilinear(&src, sx, sy)));
        }
    }
}

fn bilinear(src: &RgbImage, x: f32, y: f32) -> [u8; 3] {
    let (w, h) = (src.width() as i64, src.height() as i64);
    if x <= -1.0 || y <= -1.0 || x >= w as f32 || y >= h as f32 {
        return [0; 3];
    }
    let (x0, y0) = (x.floor() as i64, y.floor() as i64);
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    let at = |xi: i64, yi: i64| -> [f32; 3] {
        if (0..w).contains(&xi) && (0..h).contains(&yi) {
            let p = src.get_pixel(xi as u32, yi as u32).0;
            [f32::from(p[0]), f32::from(p[1]), f32::from(p[2])]
        } else {
            [0.0; 3]
        }
    };
    let (a, b, c, d) = (at(x0, y0), at(x0 + 1, y0), at(x0, y0 + 1), at(x0 + 1, y0 + 1));
    let mut out = [0u8; 3];
    for k in 0..3 {
        let top = a[k] + fx * (b[k] - a[k]);
        let bottom = c[k] + fx * (d[k] - c[k]);
        out[k] = (top + fy * (bottom - top)).round().clamp(0.0, 255.0) as u8;
    }
    out
}
