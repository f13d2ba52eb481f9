//! Geometric transforms on RGB images: padded random crop, flip, random-resized-crop, resize,
//! centre crop.

use super::resample::resample;
use image::imageops;
use image::RgbImage;
use rand::Rng;

/// Random `size`x`size` crop of the image zero-padded by `pad` on every side (CIFAR recipe).
pub fn random_crop_padded(img: &RgbImage, size: usize, pad: usize, rng: &mut impl Rng) -> RgbImage {
    let (w, h) = (img.width() as i64, img.height() as i64);
    let (s, p) = (size as i64, pad as i64);
    let max_x = (w + 2 * p - s).max(0);
    let max_y = (h + 2 * p - s).max(0);
    let ox = rng.random_range(0..=max_x) - p;
    let oy = rng.random_range(0..=max_y) - p;
    RgbImage::from_fn(size as u32, size as u32, |x, y| {
        let (sx, sy) = (x as i64 + ox, y as i64 + oy);
        if (0..w).contains(&sx) && (0..h).contains(&sy) {
            *img.get_pixel(sx as u32, sy as u32)
        } else {
            image::Rgb([0, 0, 0])
        }
    })
}

/// Mirrors the image left-right with probability 0.5.
pub fn random_hflip(img: &mut RgbImage, rng: &mut impl Rng) {
    if rng.random_bool(0.5) {
        imageops::flip_horizontal_in_place(img);
    }
}

/// torchvision's RandomResizedCrop: up to ten tries at a crop with area fraction in `scale`
/// and log-uniform aspect ratio in `ratio`, falling back to the central crop of clamped ratio;
/// the crop is resized (bilinear, antialiased) to `size`x`size`.
pub fn random_resized_crop(
    img: &RgbImage,
    size: usize,
    scale: [f64; 2],
    ratio: [f64; 2],
    rng: &mut impl Rng,
) -> RgbImage {
    let (w, h) = (img.width() as f64, img.height() as f64);
    let area = w * h;
    let (log_lo, log_hi) = (ratio[0].ln(), ratio[1].ln());
    for _ in 0..10 {
        let target = area * rng.random_range(scale[0]..=scale[1]);
        let aspect = rng.random_range(log_lo..=log_hi).exp();
        let cw = (target * aspect).sqrt().round();
        let ch = (target / aspect).sqrt().round();
        if cw >= 1.0 && ch >= 1.0 && cw <= w && ch <= h {
            let x = rng.random_range(0..=(w - cw) as u32);
            let y = rng.random_range(0..=(h - ch) as u32);
            return crop_resize(img, [x, y, cw as u32, ch as u32], size);
        }
    }
    let in_ratio = w / h;
    let (cw, ch) = if in_ratio < ratio[0] {
        (w, (w / ratio[0]).round())
    } else if in_ratio > ratio[1] {
        ((h * ratio[1]).round(), h)
    } else {
        (w, h)
    };
    let x = ((w - cw) / 2.0) as u32;
    let y = ((h - ch) / 2.0) as u32;
    crop_resize(img, [x, y, cw as u32, ch as u32], size)
}

fn crop_resize(img: &RgbImage, region: [u32; 4], size: usize) -> RgbImage {
    let [x, y, w, h] = region.map(f64::from);
    resample(img, [x, y, w.max(1.0), h.max(1.0)], size, size)
}

/// Resizes so the shorter side is `short` (aspect kept), bilinear with antialiasing.
pub fn resize_shorter(img: &RgbImage, short: usize) -> RgbImage {
    let (w, h) = (img.width() as f64, img.height() as f64);
    let k = short as f64 / w.min(h);
    let (nw, nh) = (((w * k).round() as u32).max(1), ((h * k).round() as u32).max(1));
    if (nw, nh) == img.dimensions() {
        return img.clone();
    }
    resample(img, [0.0, 0.0, w, h], nw as usize, nh as usize)
}

/// Central `size`x`size` crop; an image smaller than that is first resized up.
pub fn center_crop(img: &RgbImage, size: usize) -> RgbImage {
    let s = size as u32;
    let img = if img.width() < s || img.height() < s {
        resize_shorter(img, size)
    } else {
        img.clone()
    };
    if img.dimensions() == (s, s) {
        return img;
    }
    let x = (img.width() - s) / 2;
    let y = (img.height() - s) / 2;
    imageops::crop_imm(&img, x, y, s, s).to_image()
}
