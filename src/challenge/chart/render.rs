//! Drawing a [`Chart`] as a PNG with `plotters`, with jitter from the
//! challenge's own seed so no two challenges draw alike:
//!
//! - **colours**: a random starting hue, spread around the wheel, in a
//!   random order, with random saturation and lightness;
//! - **order**: bars and slices in a random order (a line keeps its
//!   order, which is its meaning), and the pie starts at a random angle;
//! - **scale**: every value times one random factor (0.6 to 1.6), the axis
//!   top a random 5% to 45% above the largest;
//! - **noise**: each value moved by up to 1.5% of the largest (less than a
//!   quarter of the templates' margin, so the answer never changes), and
//!   faint specks and strokes over the plot, more at higher difficulty.
//!
//! Text uses DejaVu Sans Bold from `datasets/fonts/`, registered once with
//! plotters' `ab_glyph` font map.

use super::{Chart, ChartKind};
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, ImageEncoder};
use plotters::coord::ranged1d::{IntoSegmentedCoord, SegmentValue};
use plotters::prelude::*;
use rand::seq::SliceRandom;
use rand::{Rng, RngCore};
use std::path::Path;
use std::sync::OnceLock;

/// The picture's size in pixels.
pub const WIDTH: u32 = 600;
pub const HEIGHT: u32 = 340;

const FAMILY: &str = "palisade-chart";
/// The face, under `datasets/`.
pub const FONT_FILE: &str = "fonts/DejaVuSans-Bold.ttf";

/// Why a chart could not be drawn.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot draw the chart: {0}")]
pub struct RenderError(pub String);

/// Registers the face at `datasets/fonts/` with plotters, once per process
/// (plotters keeps fonts for the life of the process; later loads with
/// another directory keep the first face, which is the same file).
pub fn register_font(datasets: &Path) -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    let path = datasets.join(FONT_FILE);
    REGISTERED
        .get_or_init(|| {
            let bytes = std::fs::read(&path)
                .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
            // plotters wants the face for the life of the process.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            plotters::style::register_font(FAMILY, FontStyle::Normal, bytes)
                .map_err(|_| format!("`{}` is not a TrueType font", path.display()))
        })
        .clone()
}

/// `chart` as a PNG of [`WIDTH`]×[`HEIGHT`], jittered from `rng`.
pub fn render(
    chart: &Chart,
    difficulty: u8,
    rng: &mut dyn RngCore,
) -> Result<Vec<u8>, RenderError> {
    let n = chart.values.len().min(chart.labels.len());
    if n == 0 {
        return Err(RenderError("nothing to draw".into()));
    }
    let (labels, values) = jitter(chart, n, rng);
    let colours = palette(n, rng);
    let mut pixels = vec![255u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (WIDTH, HEIGHT)).into_drawing_area();
        let fail = |e: &dyn std::fmt::Display| RenderError(e.to_string());
        let paper = RGBColor(
            rng.random_range(246..=255),
            rng.random_range(246..=255),
            rng.random_range(244..=255),
        );
        root.fill(&paper).map_err(|e| fail(&e))?;
        match chart.kind {
            ChartKind::Bar | ChartKind::Line => {
                axes(&root, chart, &labels, &values, &colours, rng).map_err(|e| fail(&e))?
            }
            ChartKind::Pie => {
                pie(&root, chart, &labels, &values, &colours, rng).map_err(|e| fail(&e))?
            }
        }
        noise(&root, difficulty, rng).map_err(|e| fail(&e))?;
        root.present().map_err(|e| fail(&e))?;
    }
    let mut png = Vec::new();
    PngEncoder::new_with_quality(&mut png, CompressionType::Fast, FilterType::Adaptive)
        .write_image(&pixels, WIDTH, HEIGHT, ExtendedColorType::Rgb8)
        .map_err(|e| RenderError(e.to_string()))?;
    Ok(png)
}

/// The labels and values to draw: shuffled (but for a line), scaled, and
/// nudged by a little noise.
fn jitter(chart: &Chart, n: usize, rng: &mut dyn RngCore) -> (Vec<String>, Vec<f64>) {
    let mut order: Vec<usize> = (0..n).collect();
    if chart.kind != ChartKind::Line {
        order.shuffle(rng);
    }
    let scale = rng.random_range(0.6..1.6);
    let top = chart.values[..n].iter().fold(0f64, |a, &v| a.max(v.abs()));
    let labels = order.iter().map(|&i| short(&chart.labels[i])).collect();
    let values = order
        .iter()
        .map(|&i| {
            let nudge = rng.random_range(-0.015..0.015) * top;
            let v = chart.values[i] + nudge;
            // Bars and slices stay at or above zero.
            let v = if chart.kind == ChartKind::Line {
                v
            } else {
                v.max(0.0)
            };
            v * scale
        })
        .collect();
    (labels, values)
}

/// Long labels are cut so they fit under a bar; the choices keep the full
/// text.
fn short(label: &str) -> String {
    const MAX: usize = 16;
    if label.chars().count() <= MAX {
        label.to_string()
    } else {
        let cut: String = label.chars().take(MAX - 1).collect();
        format!("{cut}…")
    }
}

fn palette(n: usize, rng: &mut dyn RngCore) -> Vec<RGBColor> {
    let start = rng.random_range(0.0..1.0);
    let step = 1.0 / n as f64;
    let mut colours: Vec<RGBColor> = (0..n)
        .map(|i| {
            let hue =
                (start + step * i as f64 + rng.random_range(-0.2..0.2) * step).rem_euclid(1.0);
            hsl(
                hue,
                rng.random_range(0.5..0.8),
                rng.random_range(0.38..0.52),
            )
        })
        .collect();
    colours.shuffle(rng);
    colours
}

/// HSL (each 0 to 1) to RGB.
fn hsl(h: f64, s: f64, l: f64) -> RGBColor {
    let c = (1.0 - (2.0 * l - 1.0).abs()) * s;
    let x = c * (1.0 - ((h * 6.0).rem_euclid(2.0) - 1.0).abs());
    let m = l - c / 2.0;
    let (r, g, b) = match (h * 6.0) as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let byte = |v: f64| ((v + m) * 255.0).round().clamp(0.0, 255.0) as u8;
    RGBColor(byte(r), byte(g), byte(b))
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;
type DrawResult =
    Result<(), DrawingAreaErrorKind<<BitMapBackend<'static> as DrawingBackend>::ErrorType>>;

/// A bar or line chart on labelled axes.
fn axes(
    root: &Area,
    chart: &Chart,
    labels: &[String],
    values: &[f64],
    colours: &[RGBColor],
    rng: &mut dyn RngCore,
) -> DrawResult {
    let n = values.len();
    let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let low = values.iter().copied().fold(f64::INFINITY, f64::min);
    let headroom = rng.random_range(1.05..1.45);
    let (bottom, top) = if chart.kind == ChartKind::Bar || low >= 0.0 {
        (0.0, (high * headroom).max(1e-9))
    } else {
        let span = (high - low).max(1e-9);
        (low - span * 0.1, high + span * (headroom - 1.0))
    };
    let ink = RGBColor(40, 44, 52);
    // Smaller text when many labels share the axis.
    let label_size = if n > 6 { 11 } else { 13 };
    let mut plot = ChartBuilder::on(root)
        .caption(&chart.title, (FAMILY, 18).into_font().color(&ink))
        .margin(14)
        .x_label_area_size(34)
        .y_label_area_size(60)
        // A segmented range has a segment for each end: `0..n - 1` is n.
        .build_cartesian_2d((0..n.max(2) - 1).into_segmented(), bottom..top)?;
    let grid = RGBColor(
        rng.random_range(205..=230),
        rng.random_range(205..=230),
        rng.random_range(205..=230),
    );
    plot.configure_mesh()
        .disable_x_mesh()
        .x_labels(n)
        .y_labels(rng.random_range(4..=7))
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
                labels.get(*i).cloned().unwrap_or_default()
            }
            SegmentValue::Last => String::new(),
        })
        .y_label_formatter(&|v| compact(*v))
        .label_style((FAMILY, label_size).into_font().color(&ink))
        .bold_line_style(grid)
        .light_line_style(TRANSPARENT)
        .axis_style(ink)
        .draw()?;
    match chart.kind {
        ChartKind::Line => {
            let colour = colours[0];
            let width = rng.random_range(2..=4);
            let points: Vec<(SegmentValue<usize>, f64)> = values
                .iter()
                .enumerate()
                .map(|(i, &v)| (SegmentValue::CenterOf(i), v))
                .collect();
            plot.draw_series(LineSeries::new(
                points.iter().cloned(),
                colour.stroke_width(width),
            ))?;
            let radius = rng.random_range(3..=5);
            plot.draw_series(
                points
                    .iter()
                    .map(|p| Circle::new(p.clone(), radius, colour.filled())),
            )?;
        }
        _ => {
            for (i, (&v, colour)) in values.iter().zip(colours).enumerate() {
                plot.draw_series(
                    Histogram::vertical(&plot)
                        .style(colour.filled())
                        .margin(rng.random_range(6..=18))
                        .data([(i, v)]),
                )?;
            }
        }
    }
    Ok(())
}

/// A pie, labels beside their slices.
fn pie(
    root: &Area,
    chart: &Chart,
    labels: &[String],
    values: &[f64],
    colours: &[RGBColor],
    rng: &mut dyn RngCore,
) -> DrawResult {
    let ink = RGBColor(40, 44, 52);
    let titled = root.titled(&chart.title, (FAMILY, 18).into_font().color(&ink))?;
    let (w, h) = titled.dim_in_pixel();
    let centre = (
        w as i32 / 2 + rng.random_range(-20..=20),
        h as i32 / 2 + rng.random_range(-6..=6),
    );
    let radius = f64::from(h.min(w)) * rng.random_range(0.3..0.36);
    let mut pie = Pie::new(&centre, &radius, values, colours, labels);
    pie.start_angle(rng.random_range(0.0..360.0));
    pie.label_style((FAMILY, 14).into_font().color(&ink));
    pie.label_offset(rng.random_range(8.0..16.0));
    titled.draw(&pie)?;
    Ok(())
}

/// Faint specks and strokes across the whole picture.
fn noise(root: &Area, difficulty: u8, rng: &mut dyn RngCore) -> DrawResult {
    let level = u32::from(difficulty.clamp(1, 5));
    let (w, h) = (WIDTH as i32, HEIGHT as i32);
    for _ in 0..(60 * level) {
        let grey = rng.random_range(150..=215);
        let at = (rng.random_range(0..w), rng.random_range(0..h));
        root.draw(&Circle::new(
            at,
            rng.random_range(1..=2),
            RGBColor(grey, grey, grey).mix(0.5).filled(),
        ))?;
    }
    for _ in 0..level {
        let grey = rng.random_range(140..=200);
        let from = (rng.random_range(0..w), rng.random_range(0..h));
        let to = (rng.random_range(0..w), rng.random_range(0..h));
        root.draw(&PathElement::new(
            [from, to],
            RGBColor(grey, grey, grey).mix(0.45).stroke_width(1),
        ))?;
    }
    Ok(())
}

/// An axis number in few characters: 1200 → 1.2k, 3500000 → 3.5M.
fn compact(v: f64) -> String {
    let a = v.abs();
    let (x, unit) = if a >= 1e9 {
        (v / 1e9, "G")
    } else if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e4 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let text = if x.fract().abs() < 1e-9 || x.abs() >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    };
    format!("{text}{unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_numbers() {
        assert_eq!(compact(0.0), "0");
        assert_eq!(compact(2.5), "2.5");
        assert_eq!(compact(12_000.0), "12k");
        assert_eq!(compact(3_500_000.0), "3.5M");
    }

    #[test]
    fn long_labels_are_cut() {
        assert_eq!(short("Norway"), "Norway");
        assert_eq!(short("The Democratic Republic"), "The Democratic …");
    }

    #[test]
    fn hsl_primaries() {
        assert_eq!(hsl(0.0, 1.0, 0.5), RGBColor(255, 0, 0));
        assert_eq!(hsl(1.0 / 3.0, 1.0, 0.5), RGBColor(0, 255, 0));
    }
}
