//! The ROC curve as a PNG, drawn with `plotters` on its bitmap backend.
//! Text uses the DejaVu face from `datasets/fonts/`, compiled in so the
//! plot does not depend on the fonts of the machine that draws it.

use plotters::prelude::*;
use std::path::Path;
use std::sync::OnceLock;

static FONT: &[u8] = include_bytes!("../../../datasets/fonts/DejaVuSans-Bold.ttf");
const FAMILY: &str = "palisade-sans";

/// One curve: its legend label and its points.
pub struct Curve<'a> {
    pub label: String,
    pub points: &'a [(f64, f64)],
}

/// Why the PNG could not be drawn or written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlotError(pub String);

impl std::fmt::Display for PlotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PlotError {}

fn register() -> Result<(), PlotError> {
    static DONE: OnceLock<bool> = OnceLock::new();
    let ok = *DONE
        .get_or_init(|| plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    if ok {
        Ok(())
    } else {
        Err(PlotError("the built-in font could not be loaded".into()))
    }
}

const COLOURS: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
];

/// Draws `curves` (up to four) with the chance diagonal into `path`.
pub fn roc_png(path: &Path, title: &str, curves: &[Curve]) -> Result<(), PlotError> {
    register()?;
    let fail = |e: &dyn std::fmt::Display| PlotError(format!("{}: {e}", path.display()));
    let root = BitMapBackend::new(path, (720, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FAMILY, 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d(0f64..1f64, 0f64..1f64)
        .map_err(|e| fail(&e))?;
    chart
        .configure_mesh()
        .x_desc("false positive rate (people flagged)")
        .y_desc("true positive rate (bots flagged)")
        .label_style((FAMILY, 14))
        .axis_desc_style((FAMILY, 15))
        .x_labels(11)
        .y_labels(11)
        .light_line_style(WHITE)
        .bold_line_style(RGBColor(225, 225, 225))
        .draw()
        .map_err(|e| fail(&e))?;
    chart
        .draw_series(LineSeries::new(
            [(0.0, 0.0), (1.0, 1.0)],
            RGBColor(170, 170, 170).stroke_width(1),
        ))
        .map_err(|e| fail(&e))?;
    for (curve, colour) in curves.iter().zip(COLOURS) {
        chart
            .draw_series(LineSeries::new(
                curve.points.iter().copied(),
                colour.stroke_width(3),
            ))
            .map_err(|e| fail(&e))?
            .label(curve.label.clone())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], colour.stroke_width(3)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .label_font((FAMILY, 15))
        .background_style(WHITE.mix(0.9))
        .border_style(RGBColor(200, 200, 200))
        .draw()
        .map_err(|e| fail(&e))?;
    root.present().map_err(|e| fail(&e))?;
    Ok(())
}
