//! Drawing one text challenge: lay the glyphs out, distort them, rasterise
//! everything as one set of outlines and encode a grayscale PNG.
//!
//! The distortion is applied to the outlines, not to pixels: each glyph's
//! points are scaled, sheared, rotated and placed, then every point (glyphs
//! and interference lines alike) goes through one sine warp, and a single
//! coverage pass draws the lot. No intermediate bitmap is resampled, so the
//! strokes stay sharp (legible) and a render costs one pass over the image.

use std::f32::consts::TAU;

use ab_glyph::{point, Point};
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, ImageEncoder};
use rand::Rng;

use super::glyphs::{signed_area, GlyphShape};
use super::raster::Coverage;
use super::{HEIGHT, WIDTH};

/// What one difficulty level does to the picture (the table in the module
/// docs of `text` is this one).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Distortion {
    /// Each glyph is turned by up to this many degrees either way.
    pub rotation_deg: f32,
    /// Horizontal shear of each glyph, up to this factor either way.
    pub shear: f32,
    /// Each glyph's size varies by up to this fraction either way.
    pub size_jitter: f32,
    /// Each glyph's centre moves up or down by up to this many pixels.
    pub baseline_jitter_px: f32,
    /// Distance between neighbouring glyphs' centres, as a share of their
    /// (turned) ink widths: below 1 they overlap.
    pub spacing: f32,
    /// Largest displacement of the sine warp, in pixels, on each axis.
    pub warp_px: f32,
    /// Interference lines and arcs drawn in the ink colour, and their
    /// widest stroke in pixels.
    pub lines: u8,
    pub line_width_px: f32,
    /// Specks of ink or background colour, 1-2 px each.
    pub dots: u16,
    /// The background's brightness runs from one side to the other by up
    /// to this many grey levels (a fixed threshold cannot split ink from
    /// paper everywhere).
    pub shading: f32,
    /// Whether each glyph draws its face at random (else one per image).
    pub mixed_faces: bool,
}

const DISTORTIONS: [Distortion; 5] = [
    Distortion {
        rotation_deg: 6.0,
        shear: 0.08,
        size_jitter: 0.05,
        baseline_jitter_px: 2.0,
        spacing: 1.08,
        warp_px: 1.5,
        lines: 1,
        line_width_px: 1.5,
        dots: 60,
        shading: 12.0,
        mixed_faces: false,
    },
    Distortion {
        rotation_deg: 10.0,
        shear: 0.11,
        size_jitter: 0.07,
        baseline_jitter_px: 3.0,
        spacing: 1.02,
        warp_px: 2.2,
        lines: 1,
        line_width_px: 1.8,
        dots: 90,
        shading: 16.0,
        mixed_faces: false,
    },
    Distortion {
        rotation_deg: 14.0,
        shear: 0.14,
        size_jitter: 0.09,
        baseline_jitter_px: 3.5,
        spacing: 0.97,
        warp_px: 2.9,
        lines: 2,
        line_width_px: 2.1,
        dots: 120,
        shading: 20.0,
        mixed_faces: true,
    },
    Distortion {
        rotation_deg: 18.0,
        shear: 0.17,
        size_jitter: 0.11,
        baseline_jitter_px: 4.0,
        spacing: 0.93,
        warp_px: 3.6,
        lines: 2,
        line_width_px: 2.4,
        dots: 150,
        shading: 24.0,
        mixed_faces: true,
    },
    Distortion {
        rotation_deg: 22.0,
        shear: 0.2,
        size_jitter: 0.13,
        baseline_jitter_px: 4.5,
        spacing: 0.9,
        warp_px: 4.3,
        lines: 3,
        line_width_px: 2.6,
        dots: 180,
        shading: 28.0,
        mixed_faces: true,
    },
];

/// The distortion of `difficulty` (clamped to 1-5).
pub fn distortion(difficulty: u8) -> &'static Distortion {
    &DISTORTIONS[usize::from(difficulty.clamp(1, 5) - 1)]
}

/// The em size glyphs are drawn at before fitting: capitals about 36 px tall.
const EM_PX: f32 = 50.0;
/// Space kept free at the left and right edges.
const MARGIN_PX: f32 = 6.0;

/// A glyph placed in the image, before the warp.
struct Placed<'a> {
    shape: &'a GlyphShape,
    /// Pixels per em across and up the glyph (before it is turned).
    width: f32,
    height: f32,
    shear: f32,
    cos: f32,
    sin: f32,
    centre: Point,
}

/// The global sine warp: x moves with y, y moves with x.
struct Warp {
    amplitude_x: f32,
    frequency_x: f32,
    phase_x: f32,
    amplitude_y: f32,
    frequency_y: f32,
    phase_y: f32,
}

impl Warp {
    fn new(max_px: f32, rng: &mut impl Rng) -> Warp {
        Warp {
            amplitude_x: max_px * rng.random_range(0.6..=1.0),
            frequency_x: TAU / rng.random_range(35.0..70.0),
            phase_x: rng.random_range(0.0..TAU),
            amplitude_y: max_px * rng.random_range(0.6..=1.0),
            frequency_y: TAU / rng.random_range(60.0..140.0),
            phase_y: rng.random_range(0.0..TAU),
        }
    }

    fn apply(&self, p: Point) -> Point {
        let x = p.x + self.amplitude_x * fast_sin(p.y * self.frequency_x + self.phase_x);
        let y = p.y + self.amplitude_y * fast_sin(p.x * self.frequency_y + self.phase_y);
        point(x, y)
    }
}

/// Renders `glyphs` (one shape per face for each character to draw) as a
/// grayscale PNG of `WIDTH`×`HEIGHT`.
pub fn render(glyphs: &[&[GlyphShape]], difficulty: u8, rng: &mut impl Rng) -> Vec<u8> {
    let params = distortion(difficulty);
    let placed = lay_out(glyphs, params, rng);
    let warp = Warp::new(params.warp_px, rng);

    let mut raster = Coverage::new(WIDTH as usize, HEIGHT as usize);
    let mut scratch = Vec::with_capacity(256);
    for glyph in &placed {
        draw_glyph(&mut raster, glyph, &warp, &mut scratch);
    }
    for _ in 0..params.lines {
        interference_line(params.line_width_px, rng, &mut scratch);
        scratch.iter_mut().for_each(|p| *p = warp.apply(*p));
        draw_polyline(&mut raster, &scratch);
    }
    encode_png(&paint(raster, params, rng))
}

fn draw_glyph(raster: &mut Coverage, glyph: &Placed<'_>, warp: &Warp, scratch: &mut Vec<Point>) {
    for contour in &glyph.shape.contours {
        scratch.clear();
        scratch.extend(contour.iter().map(|&p| warp.apply(glyph.transform(p))));
        draw_polyline(raster, scratch);
    }
}

impl Placed<'_> {
    fn transform(&self, p: Point) -> Point {
        let x = (p.x + self.shear * p.y) * self.width;
        let y = p.y * self.height;
        point(
            self.centre.x + x * self.cos - y * self.sin,
            self.centre.y + x * self.sin + y * self.cos,
        )
    }
}

/// Sizes, turns and positions the glyphs left to right, squeezed together
/// if they would not fit, and placed at a random offset in the space left.
fn lay_out<'a>(
    glyphs: &[&'a [GlyphShape]],
    params: &Distortion,
    rng: &mut impl Rng,
) -> Vec<Placed<'a>> {
    let face_count = glyphs.first().map_or(1, |faces| faces.len()).max(1);
    let image_face = rng.random_range(0..face_count);
    let mut placed: Vec<Placed<'a>> = Vec::with_capacity(glyphs.len());
    // Centre x relative to the first glyph's left edge, and turned widths.
    let mut extents: Vec<f32> = Vec::with_capacity(glyphs.len());
    for faces in glyphs {
        let face = if params.mixed_faces {
            rng.random_range(0..face_count)
        } else {
            image_face
        };
        let Some(shape) = faces.get(face).or(faces.first()) else {
            continue;
        };
        let size = EM_PX * (1.0 + rng.random_range(-params.size_jitter..=params.size_jitter));
        let angle = rng
            .random_range(-params.rotation_deg..=params.rotation_deg)
            .to_radians();
        let (sin, cos) = angle.sin_cos();
        let shear = rng.random_range(-params.shear..=params.shear);
        let dy = rng.random_range(-params.baseline_jitter_px..=params.baseline_jitter_px);
        extents.push((shape.width * cos.abs() + shape.height * sin.abs()) * size);
        placed.push(Placed {
            shape,
            width: size,
            height: size,
            shear,
            cos,
            sin,
            centre: point(0.0, HEIGHT as f32 / 2.0 + dy),
        });
    }
    let mut x = extents.first().map_or(0.0, |w| w / 2.0);
    for (i, glyph) in placed.iter_mut().enumerate() {
        if i > 0 {
            x += (extents[i - 1] + extents[i]) / 2.0 * params.spacing;
        }
        glyph.centre.x = x;
    }
    let span = x + extents.last().map_or(0.0, |w| w / 2.0);
    let available = WIDTH as f32 - 2.0 * MARGIN_PX;
    let fit = (available / span).min(1.0);
    let slack = (available - span * fit).max(0.0);
    let left = MARGIN_PX + rng.random_range(0.0..=slack);
    // Squeezed glyphs lose less height than width: long answers stay tall
    // enough to read, and the image has the room.
    let fit_height = fit.sqrt();
    for glyph in &mut placed {
        glyph.width *= fit;
        glyph.height *= fit_height;
        glyph.centre.x = left + glyph.centre.x * fit;
    }
    placed
}

/// A wavy stroke across most of the image, as a closed outline wound like
/// the glyphs' (so where it crosses them the ink adds up, not cancels),
/// written into `out`.
fn interference_line(max_width: f32, rng: &mut impl Rng, out: &mut Vec<Point>) {
    let (w, h) = (WIDTH as f32, HEIGHT as f32);
    let x0 = rng.random_range(0.0..w * 0.3);
    let x1 = rng.random_range(w * 0.7..w);
    let y0 = rng.random_range(h * 0.25..h * 0.75);
    let slope = rng.random_range(-0.3..0.3) * h / w;
    let amplitude = rng.random_range(2.0..h * 0.25);
    let frequency = TAU / rng.random_range(60.0..180.0);
    let phase = rng.random_range(0.0..TAU);
    let half_width = rng.random_range(0.6..=max_width.max(1.2) / 2.0);

    let steps = ((x1 - x0) / 4.0).ceil() as usize;
    out.clear();
    // One side forwards into `out`, the other into `back`, then reversed.
    let mut back = Vec::with_capacity(steps + 1);
    for i in 0..=steps {
        let x = x0 + (x1 - x0) * i as f32 / steps as f32;
        let angle = x * frequency + phase;
        let y = y0 + slope * (x - x0) + amplitude * fast_sin(angle);
        let dy_dx = slope + amplitude * frequency * fast_cos(angle);
        // Offset along the normal, so steep parts keep their width.
        let norm = (1.0 + dy_dx * dy_dx).sqrt();
        let (nx, ny) = (-half_width * dy_dx / norm, half_width / norm);
        out.push(point(x + nx, y + ny));
        back.push(point(x - nx, y - ny));
    }
    out.extend(back.into_iter().rev());
    let first = out[0];
    out.push(first);
    if signed_area(out) < 0.0 {
        out.reverse();
    }
}

fn draw_polyline(raster: &mut Coverage, points: &[Point]) {
    for pair in points.windows(2) {
        raster.draw_line(pair[0], pair[1]);
    }
}

/// Ink over a shaded background, then the specks.
fn paint(raster: Coverage, params: &Distortion, rng: &mut impl Rng) -> Vec<u8> {
    let ink: f32 = rng.random_range(0.0..=70.0);
    let left: f32 = rng.random_range(215.0..=245.0);
    let right = (left + rng.random_range(-params.shading..=params.shading)).min(255.0);
    let column_background: Vec<f32> = (0..WIDTH)
        .map(|x| left + (right - left) * x as f32 / WIDTH as f32)
        .collect();
    let width = WIDTH as usize;
    let mut pixels = vec![0u8; width * HEIGHT as usize];
    raster.finish(|y, coverage| {
        let row = &mut pixels[y * width..(y + 1) * width];
        for ((pixel, &covered), &background) in row.iter_mut().zip(coverage).zip(&column_background)
        {
            *pixel = grey_level(background + covered * (ink - background));
        }
    });
    let (ink, paper) = (grey_level(ink), grey_level(left));
    for _ in 0..params.dots {
        let x = rng.random_range(0..WIDTH - 1) as usize;
        let y = rng.random_range(0..HEIGHT - 1) as usize;
        let size = rng.random_range(1..=2);
        let value = if rng.random_bool(0.5) { ink } else { paper };
        for dy in 0..size {
            let row = (y + dy) * width;
            pixels[row + x..row + x + size].fill(value);
        }
    }
    pixels
}

/// `value` rounded to a byte. Adding 2^23 leaves the rounded integer in the
/// low bits of the float's mantissa; unlike `as u8`, this vectorises, and
/// the conversion is a third of a render's pixel work otherwise.
#[inline]
fn grey_level(value: f32) -> u8 {
    (value.clamp(0.0, 255.0) + 8_388_608.0).to_bits() as u8
}

/// sin(x) to within 0.001, far cheaper than the library's: the warp needs
/// two per outline point, and a thousandth of its few pixels is invisible.
/// (A parabola per half period, refined: Bhaskara's approximation.)
fn fast_sin(x: f32) -> f32 {
    use std::f32::consts::PI;
    // Into [-π, π]: whole turns dropped by truncation, then the half turn.
    let turns = x / TAU;
    let mut fraction = turns - turns as i32 as f32;
    if fraction > 0.5 {
        fraction -= 1.0;
    } else if fraction < -0.5 {
        fraction += 1.0;
    }
    let x = fraction * TAU;
    let y = (4.0 / PI) * x - (4.0 / (PI * PI)) * x * x.abs();
    0.225 * (y * y.abs() - y) + y
}

fn fast_cos(x: f32) -> f32 {
    fast_sin(x + TAU / 4.0)
}

fn encode_png(pixels: &[u8]) -> Vec<u8> {
    let mut png = Vec::with_capacity(pixels.len() + 1024);
    PngEncoder::new_with_quality(&mut png, CompressionType::Fast, FilterType::Up)
        .write_image(pixels, WIDTH, HEIGHT, ExtendedColorType::L8)
        // The buffer is WIDTH×HEIGHT bytes by construction and a Vec
        // accepts every write, so the encoder has nothing to fail on.
        .expect("a WIDTH×HEIGHT grayscale buffer encodes as PNG");
    png
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::challenge::text::glyphs::load_faces;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    fn shape_of(c: char) -> GlyphShape {
        let fonts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/fonts");
        load_faces(&fonts, &c.to_string())
            .unwrap()
            .remove(0)
            .remove(0)
    }

    fn upright(shape: &GlyphShape, centre: Point) -> Placed<'_> {
        Placed {
            shape,
            width: EM_PX,
            height: EM_PX,
            shear: 0.0,
            cos: 1.0,
            sin: 0.0,
            centre,
        }
    }

    const NO_WARP: Warp = Warp {
        amplitude_x: 0.0,
        frequency_x: 0.0,
        phase_x: 0.0,
        amplitude_y: 0.0,
        frequency_y: 0.0,
        phase_y: 0.0,
    };

    fn coverage(raster: Coverage) -> Vec<f32> {
        let mut out = Vec::new();
        raster.finish(|_, row| out.extend_from_slice(row));
        out
    }

    #[test]
    fn every_distortion_grows_with_difficulty() {
        for d in 1..5 {
            let (a, b) = (distortion(d), distortion(d + 1));
            assert!(a.rotation_deg < b.rotation_deg && a.shear < b.shear);
            assert!(a.size_jitter < b.size_jitter);
            assert!(a.baseline_jitter_px < b.baseline_jitter_px);
            assert!(a.spacing > b.spacing, "closer glyphs overlap more");
            assert!(a.warp_px < b.warp_px);
            assert!(a.lines <= b.lines && a.line_width_px < b.line_width_px);
            assert!(a.dots < b.dots && a.shading < b.shading);
            assert!(!a.mixed_faces || b.mixed_faces);
        }
        assert!(
            distortion(5).spacing < 1.0,
            "the hardest level overlaps glyphs"
        );
        assert_eq!(distortion(0), distortion(1));
        assert_eq!(distortion(200), distortion(5));
    }

    #[test]
    fn the_fast_sine_is_within_a_thousandth_and_grey_levels_round() {
        for i in -20_000..20_000 {
            let x = i as f32 * 0.003;
            assert!((fast_sin(x) - x.sin()).abs() < 0.0011, "sin {x}");
            assert!((fast_cos(x) - x.cos()).abs() < 0.0011, "cos {x}");
        }
        assert_eq!(grey_level(0.0), 0);
        assert_eq!(grey_level(127.4), 127);
        assert_eq!(grey_level(127.6), 128);
        assert_eq!(grey_level(255.0), 255);
        assert_eq!(grey_level(300.0), 255);
        assert_eq!(grey_level(-4.0), 0);
    }

    #[test]
    fn lines_add_to_the_glyphs_ink_where_they_cross() {
        let h = shape_of('H');
        let glyph = upright(&h, point(WIDTH as f32 / 2.0, HEIGHT as f32 / 2.0));
        let mut scratch = Vec::new();
        let mut glyph_only = Coverage::new(WIDTH as usize, HEIGHT as usize);
        draw_glyph(&mut glyph_only, &glyph, &NO_WARP, &mut scratch);
        let glyph_coverage = coverage(glyph_only);

        let mut crossings = 0;
        for seed in 0..40 {
            let mut line_only = Coverage::new(WIDTH as usize, HEIGHT as usize);
            let mut both = Coverage::new(WIDTH as usize, HEIGHT as usize);
            interference_line(3.0, &mut SmallRng::seed_from_u64(seed), &mut scratch);
            draw_polyline(&mut line_only, &scratch);
            draw_polyline(&mut both, &scratch);
            draw_glyph(&mut both, &glyph, &NO_WARP, &mut Vec::new());
            let line_coverage = coverage(line_only);
            let both = coverage(both);
            let overlap = (0..both.len())
                .filter(|&i| glyph_coverage[i] > 0.99 && line_coverage[i] > 0.99)
                .count();
            if overlap > 0 {
                crossings += 1;
            }
            for i in 0..both.len() {
                let expected = glyph_coverage[i].max(line_coverage[i]);
                assert!(
                    both[i] >= expected - 0.01,
                    "seed {seed} pixel {i}: {} < {expected}",
                    both[i]
                );
            }
        }
        assert!(crossings >= 10, "only {crossings} lines crossed the glyph");
    }

    #[test]
    fn ink_beyond_the_left_edge_does_not_wrap_into_the_row_above() {
        let w = shape_of('W');
        let mut raster = Coverage::new(WIDTH as usize, HEIGHT as usize);
        draw_glyph(
            &mut raster,
            &upright(&w, point(0.0, HEIGHT as f32 / 2.0)),
            &NO_WARP,
            &mut Vec::new(),
        );
        let covered = coverage(raster);
        let width = WIDTH as usize;
        let left_ink: f32 = covered.chunks(width).map(|row| row[0]).sum();
        let right_ink: f32 = covered
            .chunks(width)
            .map(|row| row[width - 10..].iter().sum::<f32>())
            .sum();
        assert!(left_ink > 5.0, "the glyph's right half is drawn");
        assert!(right_ink < 0.01, "{right_ink}");
    }

    #[test]
    fn long_answers_are_squeezed_to_fit_with_margins() {
        let m = shape_of('M');
        let glyphs: Vec<&[GlyphShape]> = (0..12).map(|_| std::slice::from_ref(&m)).collect();
        let mut rng = SmallRng::seed_from_u64(5);
        let placed = lay_out(&glyphs, distortion(1), &mut rng);
        for glyph in [&placed[0], &placed[11]] {
            let half = m.width * glyph.width / 2.0;
            assert!(
                glyph.centre.x - half >= MARGIN_PX - 2.0,
                "{}",
                glyph.centre.x
            );
            assert!(
                glyph.centre.x + half <= WIDTH as f32 - MARGIN_PX + 2.0,
                "{}",
                glyph.centre.x
            );
        }
        assert!(
            placed[0].height > placed[0].width,
            "height is kept more than width"
        );
    }
}
