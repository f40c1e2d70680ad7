//! Drawing one tile: the picture transformed afresh over a cluttered
//! background, then noise and a JPEG encode at a varying quality.
//!
//! Every step draws from the `rng`, so no two renders of a picture share
//! bytes (or pixels), and neither equals the shipped file: looking a tile up
//! by hash, or matching it pixel for pixel against the set, finds nothing.
//! Pictures are sampled bilinearly through one inverse affine map each.

use std::f32::consts::TAU;

use image::codecs::jpeg::JpegEncoder;
use image::ExtendedColorType;
use rand::Rng;

use super::dataset::{Category, Sprite};
use super::Tile;

/// A tile's side in pixels.
pub const TILE_SIZE: u32 = 100;
const SIDE: usize = TILE_SIZE as usize;
const SIDE_F: f32 = TILE_SIZE as f32;

/// What one difficulty level does to a tile (the table in the module docs
/// of `pictures` is this one).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transform {
    /// The picture is turned by up to this many degrees either way.
    pub rotation_deg: f32,
    /// Its longer side spans this share of the tile at the least (0.8 at
    /// the most).
    pub min_size: f32,
    /// Its centre moves by up to this share of the tile on each axis.
    pub offset: f32,
    /// Hue rotation, up to this many degrees either way.
    pub hue_deg: f32,
    /// Brightness changes by up to this factor either way.
    pub brightness: f32,
    /// Per-channel noise, up to this many levels either way.
    pub noise: u8,
    /// Translucent circles, rectangles and strokes behind the picture.
    pub shapes: u8,
    /// Faint, cropped pieces of other pictures behind it.
    pub fragments: u8,
    /// Thin translucent strokes drawn over it.
    pub lines_over: u8,
    /// The JPEG quality is drawn from this range.
    pub quality: (u8, u8),
}

const TRANSFORMS: [Transform; 5] = [
    Transform {
        rotation_deg: 10.0,
        min_size: 0.70,
        offset: 0.05,
        hue_deg: 10.0,
        brightness: 0.08,
        noise: 6,
        shapes: 4,
        fragments: 1,
        lines_over: 0,
        quality: (80, 92),
    },
    Transform {
        rotation_deg: 18.0,
        min_size: 0.66,
        offset: 0.07,
        hue_deg: 16.0,
        brightness: 0.11,
        noise: 9,
        shapes: 6,
        fragments: 1,
        lines_over: 0,
        quality: (72, 88),
    },
    Transform {
        rotation_deg: 26.0,
        min_size: 0.62,
        offset: 0.09,
        hue_deg: 22.0,
        brightness: 0.14,
        noise: 12,
        shapes: 8,
        fragments: 2,
        lines_over: 1,
        quality: (64, 84),
    },
    Transform {
        rotation_deg: 34.0,
        min_size: 0.58,
        offset: 0.11,
        hue_deg: 28.0,
        brightness: 0.17,
        noise: 15,
        shapes: 10,
        fragments: 2,
        lines_over: 1,
        quality: (56, 80),
    },
    Transform {
        rotation_deg: 42.0,
        min_size: 0.54,
        offset: 0.13,
        hue_deg: 34.0,
        brightness: 0.20,
        noise: 18,
        shapes: 12,
        fragments: 3,
        lines_over: 2,
        quality: (48, 76),
    },
];

/// The largest share of the tile the picture's longer side spans.
const MAX_SIZE: f32 = 0.8;

/// The transform of `difficulty` (clamped to 1-5).
pub fn transform(difficulty: u8) -> &'static Transform {
    &TRANSFORMS[usize::from(difficulty.clamp(1, 5) - 1)]
}

/// RGB, 0-255, row by row.
type Canvas = Vec<[f32; 3]>;

/// A linear map of (premultiplied) RGB.
type ColourMatrix = [[f32; 3]; 3];

/// `tile` (which must be in `categories`) as a JPEG of `TILE_SIZE`².
pub fn render(categories: &[Category], tile: Tile, difficulty: u8, rng: &mut impl Rng) -> Vec<u8> {
    let params = transform(difficulty);
    let sprite = &categories[usize::from(tile.category)].pictures[usize::from(tile.picture)];
    let mut canvas = background(rng);
    for _ in 0..params.shapes {
        draw_shape(&mut canvas, 0.2..0.5, rng);
    }
    for _ in 0..params.fragments {
        draw_fragment(&mut canvas, categories, tile.category, rng);
    }

    let size = SIDE_F * rng.random_range(params.min_size..=MAX_SIZE);
    let centre = (
        SIDE_F * (0.5 + rng.random_range(-params.offset..=params.offset)),
        SIDE_F * (0.5 + rng.random_range(-params.offset..=params.offset)),
    );
    let angle = rng
        .random_range(-params.rotation_deg..=params.rotation_deg)
        .to_radians();
    let mirror = rng.random_bool(0.5);
    let colour = colour_matrix(
        rng.random_range(-params.hue_deg..=params.hue_deg)
            .to_radians(),
        1.0 + rng.random_range(-params.brightness..=params.brightness),
        1.0,
    );
    draw_sprite(
        &mut canvas,
        sprite,
        centre,
        size,
        angle,
        mirror,
        &colour,
        1.0,
    );

    for _ in 0..params.lines_over {
        draw_stroke(&mut canvas, 0.6..1.0, 0.3..0.5, rng);
    }
    let quality = rng.random_range(params.quality.0..=params.quality.1);
    encode_jpeg(&add_noise(&canvas, params.noise, rng), quality)
}

/// A gradient between two mid-tone colours in a random direction (mid
/// tones, so white and dark pictures both stand out).
fn background(rng: &mut impl Rng) -> Canvas {
    let mut colour = || [(); 3].map(|_| rng.random_range(70.0..=210.0f32));
    let (from, to) = (colour(), colour());
    let (sin, cos) = rng.random_range(0.0..TAU).sin_cos();
    let mut canvas = Vec::with_capacity(SIDE * SIDE);
    for y in 0..SIDE {
        for x in 0..SIDE {
            let along =
                ((x as f32 - SIDE_F / 2.0) * cos + (y as f32 - SIDE_F / 2.0) * sin) / SIDE_F;
            let t = (along + 0.5).clamp(0.0, 1.0);
            canvas.push([0, 1, 2].map(|c| from[c] + (to[c] - from[c]) * t));
        }
    }
    canvas
}

/// A translucent circle, turned rectangle or stroke in a random colour.
fn draw_shape(canvas: &mut Canvas, alpha: std::ops::Range<f32>, rng: &mut impl Rng) {
    match rng.random_range(0..3) {
        0 => {
            let (cx, cy) = (rng.random_range(0.0..SIDE_F), rng.random_range(0.0..SIDE_F));
            let r = rng.random_range(4.0..22.0f32);
            let colour = random_colour(rng);
            let alpha = rng.random_range(alpha);
            let bounds = (cx - r, cy - r, cx + r, cy + r);
            fill(canvas, bounds, colour, alpha, |x, y| {
                (x - cx).powi(2) + (y - cy).powi(2) <= r * r
            });
        }
        1 => {
            let (cx, cy) = (rng.random_range(0.0..SIDE_F), rng.random_range(0.0..SIDE_F));
            let (hw, hh) = (
                rng.random_range(3.0..15.0f32),
                rng.random_range(3.0..15.0f32),
            );
            let (sin, cos) = rng.random_range(0.0..TAU).sin_cos();
            let colour = random_colour(rng);
            let alpha = rng.random_range(alpha);
            let reach = hw.hypot(hh);
            let bounds = (cx - reach, cy - reach, cx + reach, cy + reach);
            fill(canvas, bounds, colour, alpha, |x, y| {
                let (dx, dy) = (x - cx, y - cy);
                (dx * cos + dy * sin).abs() <= hw && (dy * cos - dx * sin).abs() <= hh
            });
        }
        _ => draw_stroke(canvas, 1.0..3.0, alpha, rng),
    }
}

/// A straight translucent stroke between two random points.
fn draw_stroke(
    canvas: &mut Canvas,
    half_width: std::ops::Range<f32>,
    alpha: std::ops::Range<f32>,
    rng: &mut impl Rng,
) {
    let (x0, y0) = (rng.random_range(0.0..SIDE_F), rng.random_range(0.0..SIDE_F));
    let (x1, y1) = (rng.random_range(0.0..SIDE_F), rng.random_range(0.0..SIDE_F));
    let half_width = rng.random_range(half_width);
    let colour = random_colour(rng);
    let alpha = rng.random_range(alpha);
    let (dx, dy) = (x1 - x0, y1 - y0);
    let length_sq = (dx * dx + dy * dy).max(1e-3);
    let bounds = (
        x0.min(x1) - half_width,
        y0.min(y1) - half_width,
        x0.max(x1) + half_width,
        y0.max(y1) + half_width,
    );
    fill(canvas, bounds, colour, alpha, |x, y| {
        let t = (((x - x0) * dx + (y - y0) * dy) / length_sq).clamp(0.0, 1.0);
        (x - x0 - t * dx).powi(2) + (y - y0 - t * dy).powi(2) <= half_width * half_width
    });
}

fn random_colour(rng: &mut impl Rng) -> [f32; 3] {
    [(); 3].map(|_| rng.random_range(30.0..=240.0f32))
}

/// Blends `colour` at `alpha` into the pixels of `bounds` (x0, y0, x1, y1)
/// whose centres are `inside`.
fn fill(
    canvas: &mut Canvas,
    bounds: (f32, f32, f32, f32),
    colour: [f32; 3],
    alpha: f32,
    inside: impl Fn(f32, f32) -> bool,
) {
    let (xs, ys) = (
        pixel_range(bounds.0, bounds.2),
        pixel_range(bounds.1, bounds.3),
    );
    for y in ys {
        for x in xs.clone() {
            if inside(x as f32 + 0.5, y as f32 + 0.5) {
                let pixel = &mut canvas[y * SIDE + x];
                for c in 0..3 {
                    pixel[c] += (colour[c] - pixel[c]) * alpha;
                }
            }
        }
    }
}

/// The tile's pixel indexes from `from` to `to` (pixel coordinates).
fn pixel_range(from: f32, to: f32) -> std::ops::Range<usize> {
    let start = from.floor().clamp(0.0, SIDE_F) as usize;
    let end = to.ceil().clamp(0.0, SIDE_F) as usize;
    start..end
}

/// A faint, desaturated piece of another category's picture, centred near
/// the tile's edge so only part of it shows: texture for a classifier, not
/// a second subject for a person.
fn draw_fragment(canvas: &mut Canvas, categories: &[Category], own: u16, rng: &mut impl Rng) {
    let mut category = rng.random_range(0..categories.len() - 1);
    if category >= usize::from(own) {
        category += 1;
    }
    let pictures = &categories[category].pictures;
    let sprite = &pictures[rng.random_range(0..pictures.len())];
    let along = rng.random_range(0.0..SIDE_F);
    let inset = rng.random_range(-0.1..0.1) * SIDE_F;
    let centre = match rng.random_range(0..4) {
        0 => (along, inset),
        1 => (along, SIDE_F - inset),
        2 => (inset, along),
        _ => (SIDE_F - inset, along),
    };
    let size = SIDE_F * rng.random_range(0.4..0.7);
    let colour = colour_matrix(rng.random_range(0.0..TAU), 1.0, 0.3);
    let opacity = rng.random_range(0.15..0.3);
    let angle = rng.random_range(0.0..TAU);
    draw_sprite(
        canvas,
        sprite,
        centre,
        size,
        angle,
        rng.random_bool(0.5),
        &colour,
        opacity,
    );
}

/// Hue rotation by `hue` radians (the luminance-preserving matrix of CSS
/// `hue-rotate`), then `saturation` (1 keeps it) and `brightness` factors.
fn colour_matrix(hue: f32, brightness: f32, saturation: f32) -> ColourMatrix {
    const LUMA: [f32; 3] = [0.213, 0.715, 0.072];
    let (sin, cos) = hue.sin_cos();
    let hue_rotate = [
        [
            LUMA[0] + cos * (1.0 - LUMA[0]) - sin * LUMA[0],
            LUMA[1] - cos * LUMA[1] - sin * LUMA[1],
            LUMA[2] - cos * LUMA[2] + sin * (1.0 - LUMA[2]),
        ],
        [
            LUMA[0] - cos * LUMA[0] + sin * 0.143,
            LUMA[1] + cos * (1.0 - LUMA[1]) + sin * 0.140,
            LUMA[2] - cos * LUMA[2] - sin * 0.283,
        ],
        [
            LUMA[0] - cos * LUMA[0] - sin * (1.0 - LUMA[0]),
            LUMA[1] - cos * LUMA[1] + sin * LUMA[1],
            LUMA[2] + cos * (1.0 - LUMA[2]) + sin * LUMA[2],
        ],
    ];
    let mut out = [[0.0; 3]; 3];
    for (r, row) in out.iter_mut().enumerate() {
        for (c, value) in row.iter_mut().enumerate() {
            // Saturation mixes each output channel towards the luminance.
            let saturated: f32 = (0..3)
                .map(|k| {
                    let desaturate =
                        LUMA[c] * (1.0 - saturation) + if k == c { saturation } else { 0.0 };
                    hue_rotate[r][k] * desaturate
                })
                .sum();
            *value = saturated * brightness;
        }
    }
    out
}

/// Draws `sprite` with its longer side `size` px, centred at `centre`,
/// turned by `angle` and optionally mirrored, its colours mapped by
/// `colour`, at `opacity`.
#[allow(clippy::too_many_arguments)]
fn draw_sprite(
    canvas: &mut Canvas,
    sprite: &Sprite,
    centre: (f32, f32),
    size: f32,
    angle: f32,
    mirror: bool,
    colour: &ColourMatrix,
    opacity: f32,
) {
    let (w, h) = (sprite.width as f32, sprite.height as f32);
    let scale = size / w.max(h);
    let (sin, cos) = angle.sin_cos();
    let reach = scale * w.hypot(h) / 2.0;
    let xs = pixel_range(centre.0 - reach, centre.0 + reach);
    let ys = pixel_range(centre.1 - reach, centre.1 + reach);
    let flip = if mirror { -1.0 } else { 1.0 };
    for y in ys {
        let dy = y as f32 + 0.5 - centre.1;
        for x in xs.clone() {
            let dx = x as f32 + 0.5 - centre.0;
            // The inverse map: tile pixel to picture coordinates.
            let u = flip * (dx * cos + dy * sin) / scale + w / 2.0 - 0.5;
            let v = (dy * cos - dx * sin) / scale + h / 2.0 - 0.5;
            let [r, g, b, a] = sample(sprite, u, v);
            if a <= 0.0 {
                continue;
            }
            let alpha = a * opacity;
            let pixel = &mut canvas[y * SIDE + x];
            for (c, row) in colour.iter().enumerate() {
                let value = (row[0] * r + row[1] * g + row[2] * b).clamp(0.0, a) * opacity;
                pixel[c] = pixel[c] * (1.0 - alpha) + value * 255.0;
            }
        }
    }
}

/// Bilinear sample at picture coordinates `(u, v)` (pixel centres at whole
/// numbers), premultiplied, 0-1; transparent outside the picture.
fn sample(sprite: &Sprite, u: f32, v: f32) -> [f32; 4] {
    let (w, h) = (sprite.width as i32, sprite.height as i32);
    if u <= -1.0 || v <= -1.0 || u >= w as f32 || v >= h as f32 {
        return [0.0; 4];
    }
    let (x0, y0) = (u.floor() as i32, v.floor() as i32);
    let (fx, fy) = (u - x0 as f32, v - y0 as f32);
    let texel = |x: i32, y: i32| -> [f32; 4] {
        if x < 0 || y < 0 || x >= w || y >= h {
            return [0.0; 4];
        }
        sprite.pixels[(y * w + x) as usize].map(f32::from)
    };
    let (a, b, c, d) = (
        texel(x0, y0),
        texel(x0 + 1, y0),
        texel(x0, y0 + 1),
        texel(x0 + 1, y0 + 1),
    );
    let mut out = [0.0; 4];
    for k in 0..4 {
        let top = a[k] + (b[k] - a[k]) * fx;
        let bottom = c[k] + (d[k] - c[k]) * fx;
        out[k] = (top + (bottom - top) * fy) / 255.0;
    }
    out
}

/// The canvas as RGB bytes with uniform noise of up to `amplitude` levels.
fn add_noise(canvas: &Canvas, amplitude: u8, rng: &mut impl Rng) -> Vec<u8> {
    let mut noise = vec![0u8; canvas.len() * 3];
    rng.fill_bytes(&mut noise);
    let span = 2 * u32::from(amplitude) + 1;
    let amplitude = f32::from(amplitude);
    canvas
        .iter()
        .flatten()
        .zip(&noise)
        .map(|(&value, &random)| {
            // A random byte scaled to -amplitude..=amplitude.
            let jitter = ((u32::from(random) * span) >> 8) as f32 - amplitude;
            (value + jitter).clamp(0.0, 255.0) as u8
        })
        .collect()
}

fn encode_jpeg(rgb: &[u8], quality: u8) -> Vec<u8> {
    let mut jpeg = Vec::with_capacity(8 * 1024);
    JpegEncoder::new_with_quality(&mut jpeg, quality)
        .encode(rgb, TILE_SIZE, TILE_SIZE, ExtendedColorType::Rgb8)
        // The buffer is TILE_SIZE² RGB pixels by construction and a Vec
        // accepts every write, so the encoder has nothing to fail on.
        .expect("a TILE_SIZE² RGB buffer encodes as JPEG");
    jpeg
}
