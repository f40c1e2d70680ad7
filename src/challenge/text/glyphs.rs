//! The alphabet's glyphs as flattened outlines, read from the font files
//! once at startup, so a render only transforms points and rasterises.
//!
//! Outlines are kept as closed polylines in em units (y down, origin at the
//! glyph's ink centre), cut into short segments: the renderer bends each
//! point with a non-linear warp, and a long straight stem only bends if it
//! has points along it.

use std::path::Path;

use ab_glyph::{Font, FontRef, OutlineCurve, Point};

use crate::challenge::DatasetError;

/// The faces in `datasets/fonts/`, in the order renders index them.
pub const FACES: [&str; 2] = ["DejaVuSans-Bold.ttf", "DejaVuSerif-Bold.ttf"];

/// The longest segment kept, in em: about 5 px at the size glyphs are
/// drawn. The warp's shortest wavelength is 35 px, so a straight segment
/// this long strays from the bent stroke by a fifth of a pixel at most.
const MAX_SEGMENT_EM: f32 = 0.11;
/// How far a flattened curve may stray from the true one, in em (about a
/// fifth of a pixel).
const FLATNESS_EM: f32 = 0.004;

/// One character's outline in one face.
#[derive(Debug, Clone)]
pub struct GlyphShape {
    /// Closed polylines (the first point repeated at the end), in em units
    /// around the ink centre, all wound the same way (positive area).
    pub contours: Vec<Vec<Point>>,
    /// Ink width and height, in em.
    pub width: f32,
    pub height: f32,
}

/// Every character of `alphabet` in every face: `shapes[i][face]` is the
/// `i`-th character drawn in `FACES[face]`.
pub fn load_faces(fonts_dir: &Path, alphabet: &str) -> Result<Vec<Vec<GlyphShape>>, DatasetError> {
    let mut shapes: Vec<Vec<GlyphShape>> = alphabet.chars().map(|_| Vec::new()).collect();
    for face in FACES {
        let path = fonts_dir.join(face);
        let data = std::fs::read(&path)
            .map_err(|e| DatasetError::new(path.display(), format!("cannot read: {e}")))?;
        let font = FontRef::try_from_slice(&data).map_err(|e| {
            DatasetError::new(path.display(), format!("not a TrueType/OpenType font: {e}"))
        })?;
        for (c, faces) in alphabet.chars().zip(&mut shapes) {
            let glyph = shape(&font, c).ok_or_else(|| {
                DatasetError::new(path.display(), format!("has no outline for {c:?}"))
            })?;
            faces.push(glyph);
        }
    }
    Ok(shapes)
}

fn shape(font: &FontRef<'_>, c: char) -> Option<GlyphShape> {
    let id = font.glyph_id(c);
    if id.0 == 0 {
        return None;
    }
    let outline = font.outline(id)?;
    let em = font.units_per_em()?;
    let bounds = outline.bounds;
    let centre_x = (bounds.min.x + bounds.max.x) / 2.0;
    let centre_y = (bounds.min.y + bounds.max.y) / 2.0;
    // Font units (y up) to em units around the ink centre (y down).
    let to_em = |p: Point| ab_glyph::point((p.x - centre_x) / em, (centre_y - p.y) / em);

    let mut contours: Vec<Vec<Point>> = Vec::new();
    for curve in &outline.curves {
        let (start, flattened) = flatten(curve, &to_em);
        match contours.last_mut() {
            Some(contour) if contour.last() == Some(&start) => contour.extend(flattened),
            _ => {
                let mut contour = vec![start];
                contour.extend(flattened);
                contours.push(contour);
            }
        }
    }
    for contour in &mut contours {
        if contour.first() != contour.last() {
            let first = contour[0];
            contour.push(first);
        }
    }
    if contours.is_empty() {
        return None;
    }
    // Faces may wind outlines either way; the rasteriser adds coverage, so
    // overlapping glyphs and lines must all wind alike or they cancel out.
    if contours.iter().map(|c| signed_area(c)).sum::<f32>() < 0.0 {
        contours.iter_mut().for_each(|c| c.reverse());
    }
    Some(GlyphShape {
        contours,
        // ab_glyph puts the top at `min.y` in font units (y up), so the
        // raw difference is negative.
        width: (bounds.max.x - bounds.min.x).abs() / em,
        height: (bounds.max.y - bounds.min.y).abs() / em,
    })
}

/// A curve's start and the points after it: no segment longer than
/// `MAX_SEGMENT_EM`, none straying more than `FLATNESS_EM` from the curve.
fn flatten(curve: &OutlineCurve, to_em: &impl Fn(Point) -> Point) -> (Point, Vec<Point>) {
    let controls: Vec<Point> = match *curve {
        OutlineCurve::Line(a, b) => vec![to_em(a), to_em(b)],
        OutlineCurve::Quad(a, b, c) => vec![to_em(a), to_em(b), to_em(c)],
        OutlineCurve::Cubic(a, b, c, d) => vec![to_em(a), to_em(b), to_em(c), to_em(d)],
    };
    // The control polygon's length bounds the curve's.
    let length: f32 = controls.windows(2).map(|w| distance(w[0], w[1])).sum();
    // A chord over 1/n of a Bézier curve strays by at most |B''| / (8 n²);
    // |B''| is bounded by degree·(degree-1) times the largest second
    // difference of the control points.
    let degree = (controls.len() - 1) as f32;
    let second_difference = controls
        .windows(3)
        .map(|w| (w[0].x - 2.0 * w[1].x + w[2].x).hypot(w[0].y - 2.0 * w[1].y + w[2].y))
        .fold(0.0f32, f32::max);
    let bend = degree * (degree - 1.0) * second_difference;
    let steps = (length / MAX_SEGMENT_EM)
        .max((bend / (8.0 * FLATNESS_EM)).sqrt())
        .ceil()
        .max(1.0) as usize;
    let points = (1..=steps)
        .map(|i| de_casteljau(&controls, i as f32 / steps as f32))
        .collect();
    (controls[0], points)
}

/// The point at `t` of the Bézier curve with these control points.
fn de_casteljau(controls: &[Point], t: f32) -> Point {
    let mut points = controls.to_vec();
    while points.len() > 1 {
        points = points.windows(2).map(|w| lerp(w[0], w[1], t)).collect();
    }
    points[0]
}

fn lerp(a: Point, b: Point, t: f32) -> Point {
    ab_glyph::point(a.x + (b.x - a.x) * t, a.y + (b.y - a.y) * t)
}

fn distance(a: Point, b: Point) -> f32 {
    (b.x - a.x).hypot(b.y - a.y)
}

/// The shoelace formula over a closed polyline.
pub fn signed_area(points: &[Point]) -> f32 {
    points
        .windows(2)
        .map(|w| w[0].x * w[1].y - w[1].x * w[0].y)
        .sum::<f32>()
        / 2.0
}
