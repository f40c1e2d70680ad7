//! Anti-aliased coverage of closed outlines: the signed-area accumulation
//! of font-rs (Raph Levien, Apache-2.0), which `ab_glyph` also rasterises
//! glyphs with. Its crate keeps the accumulator private and hands pixels
//! out one at a time from a single running sum through the whole image; a
//! text challenge draws everything in one pass, and that chain of dependent
//! additions (plus a scalar conversion per pixel) cost more than drawing
//! the outlines. Here the sums run over bands of rows side by side, a row
//! at a time goes to the painter, and points outside the image are cut at
//! its edges instead of wrapping into the next row.
//!
//! Each line adds, to the cells it crosses, how much of each cell lies to
//! its right times its direction; a running sum along a row then gives the
//! winding-weighted coverage of each pixel. Outlines may overlap: coverage
//! is the absolute sum, capped at 1, so shapes wound alike add up.

use ab_glyph::{point, Point};

/// A coverage accumulator for a `width`×`height` image.
pub struct Coverage {
    width: usize,
    height: usize,
    /// Row-major, `stride` cells a row: two spare cells on the right take
    /// what lines at the right edge deposit past the last pixel.
    cells: Vec<f32>,
    stride: usize,
}

/// Rows summed together: independent additions the processor overlaps.
const BAND: usize = 8;

impl Coverage {
    pub fn new(width: usize, height: usize) -> Coverage {
        let stride = width + 2;
        Coverage {
            width,
            height,
            cells: vec![0.0; stride * height],
            stride,
        }
    }

    /// Adds the line from `p0` to `p1` to the outline. Points may lie
    /// anywhere: x is clamped to the image (a polygon's coverage inside the
    /// image is unchanged by moving its outside points onto the edge), and
    /// rows outside it are skipped.
    pub fn draw_line(&mut self, p0: Point, p1: Point) {
        let right = self.width as f32;
        let p0 = point(p0.x.clamp(0.0, right), p0.y);
        let p1 = point(p1.x.clamp(0.0, right), p1.y);
        if (p0.y - p1.y).abs() <= f32::EPSILON {
            return;
        }
        let (direction, p0, p1) = if p0.y < p1.y {
            (1.0, p0, p1)
        } else {
            (-1.0, p1, p0)
        };
        let dxdy = (p1.x - p0.x) / (p1.y - p0.y);
        let mut x = p0.x;
        if p0.y < 0.0 {
            x -= p0.y * dxdy;
        }
        let first_row = p0.y.max(0.0) as usize;
        let end_row = (ceil(p1.y.max(0.0)) as usize).min(self.height);
        for y in first_row..end_row {
            let row = &mut self.cells[y * self.stride..(y + 1) * self.stride];
            // With x in 0..=width, cells run from 0 to width + 1: the row's
            // two spare cells take what falls past the last pixel.
            let mut add = |cell: i32, value: f32| row[cell as usize] += value;
            let dy = ((y + 1) as f32).min(p1.y) - (y as f32).max(p0.y);
            let x_next = x + dxdy * dy;
            let d = dy * direction;
            let (x0, x1) = if x < x_next { (x, x_next) } else { (x_next, x) };
            // x is clamped to 0 or more, so truncation is the floor (and
            // the library's floor and ceil are calls without SSE4.1).
            let x0i = x0 as i32;
            let x0_floor = x0i as f32;
            let x1i = ceil(x1);
            let x1_ceil = x1i as f32;
            if x1i <= x0i + 1 {
                // Within one cell: split by where the line's middle falls.
                let xmf = 0.5 * (x + x_next) - x0_floor;
                add(x0i, d - d * xmf);
                add(x0i + 1, d * xmf);
            } else {
                // Across cells: a triangle in the first and last, a ramp
                // of equal steps between.
                let s = (x1 - x0).recip();
                let x0f = x0 - x0_floor;
                let a0 = 0.5 * s * (1.0 - x0f) * (1.0 - x0f);
                let x1f = x1 - x1_ceil + 1.0;
                let am = 0.5 * s * x1f * x1f;
                add(x0i, d * a0);
                if x1i == x0i + 2 {
                    add(x0i + 1, d * (1.0 - a0 - am));
                } else {
                    let a1 = s * (1.5 - x0f);
                    add(x0i + 1, d * (a1 - a0));
                    for xi in x0i + 2..x1i - 1 {
                        add(xi, d * s);
                    }
                    let a2 = a1 + (x1i - x0i - 3) as f32 * s;
                    add(x1i - 1, d * (1.0 - a2 - am));
                }
                add(x1i, d * am);
            }
            x = x_next;
        }
    }

    /// Finishes the outlines: hands each row's coverage (0 to 1 a pixel)
    /// to `paint`, top to bottom, with the row's index.
    pub fn finish(mut self, mut paint: impl FnMut(usize, &[f32])) {
        let (width, stride) = (self.width, self.stride);
        for (band_index, band) in self.cells.chunks_mut(stride * BAND).enumerate() {
            let rows = band.len() / stride;
            if rows == BAND {
                // The running sums of a band of rows side by side: their
                // additions are independent, so they overlap instead of
                // each waiting on the last.
                let mut sums = [0.0f32; BAND];
                for x in 0..width {
                    for (r, sum) in sums.iter_mut().enumerate() {
                        *sum += band[r * stride + x];
                        band[r * stride + x] = sum.abs().min(1.0);
                    }
                }
            } else {
                for row in band.chunks_exact_mut(stride) {
                    let mut sum = 0.0f32;
                    for cell in &mut row[..width] {
                        sum += *cell;
                        *cell = sum.abs().min(1.0);
                    }
                }
            }
            for (r, row) in band.chunks_exact(stride).enumerate() {
                paint(band_index * BAND + r, &row[..width]);
            }
        }
    }
}

/// The ceiling of `x` ≥ 0 (below 2^31).
fn ceil(x: f32) -> i32 {
    let whole = x as i32;
    whole + i32::from((whole as f32) < x)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The coverage of every pixel in 0-255, row-major.
    fn alpha(coverage: Coverage) -> Vec<u8> {
        let mut out = Vec::new();
        coverage.finish(|_, row| out.extend(row.iter().map(|c| (c * 255.0).round() as u8)));
        out
    }

    fn polygon(coverage: &mut Coverage, points: &[(f32, f32)]) {
        for (i, &(x, y)) in points.iter().enumerate() {
            let (nx, ny) = points[(i + 1) % points.len()];
            coverage.draw_line(point(x, y), point(nx, ny));
        }
    }

    #[test]
    fn a_square_on_pixel_edges_covers_exactly_its_pixels() {
        let mut coverage = Coverage::new(10, 10);
        polygon(
            &mut coverage,
            &[(2.0, 3.0), (6.0, 3.0), (6.0, 8.0), (2.0, 8.0)],
        );
        let covered = alpha(coverage);
        for y in 0..10 {
            for x in 0..10 {
                let inside = (2..6).contains(&x) && (3..8).contains(&y);
                assert_eq!(
                    covered[y * 10 + x],
                    if inside { 255 } else { 0 },
                    "({x}, {y})"
                );
            }
        }
    }

    #[test]
    fn partial_pixels_get_partial_coverage_and_winding_does_not_matter() {
        // A triangle, both ways round: half of the 4×4 square below it.
        for points in [
            [(0.0, 0.0), (4.0, 4.0), (0.0, 4.0)],
            [(0.0, 0.0), (0.0, 4.0), (4.0, 4.0)],
        ] {
            let mut coverage = Coverage::new(4, 4);
            polygon(&mut coverage, &points);
            let covered = alpha(coverage);
            let total: u32 = covered.iter().map(|&a| u32::from(a)).sum();
            assert!((total as f32 / 255.0 - 8.0).abs() < 0.1, "{total}");
            assert!(
                (120..=135).contains(&covered[0]),
                "a cut diagonal pixel is half: {}",
                covered[0]
            );
            assert_eq!(covered[3 * 4], 255);
            assert_eq!(covered[3], 0);
        }
    }

    #[test]
    fn shapes_beyond_the_image_are_cut_at_its_edges() {
        // Past the right edge and far above and below the image.
        let mut coverage = Coverage::new(8, 12);
        polygon(
            &mut coverage,
            &[(6.0, -50.0), (30.0, -50.0), (30.0, 60.0), (6.0, 60.0)],
        );
        let covered = alpha(coverage);
        for (i, row) in covered.chunks(8).enumerate() {
            assert_eq!(row, [0, 0, 0, 0, 0, 0, 255, 255], "row {i}");
        }
        // Past the left edge: no ink wraps into another row.
        let mut coverage = Coverage::new(8, 4);
        polygon(
            &mut coverage,
            &[(-9.0, 1.0), (2.0, 1.0), (2.0, 3.0), (-9.0, 3.0)],
        );
        let covered = alpha(coverage);
        for (i, row) in covered.chunks(8).enumerate() {
            let expected = if (1..3).contains(&i) {
                [255, 255, 0, 0, 0, 0, 0, 0]
            } else {
                [0; 8]
            };
            assert_eq!(row, expected, "row {i}");
        }
    }
}
