//! Platt calibration: `p = sigmoid(a × logit + b)` fitted by weighted
//! maximum likelihood (Newton's method) on held-out logits, so the score
//! reads as a probability on data the network did not train on.

use crate::scoring::model::{sigmoid, Calibration};

/// Fits `a` and `b` to `(logit, is_bot, weight)` triples. Falls back to
/// the identity when the data cannot support a fit (one class, or a
/// slope that is not positive: a calibration must not reverse the order).
pub fn fit(points: &[(f32, bool, f32)]) -> Calibration {
    let (mut a, mut b) = (1.0f64, 0.0f64);
    // A little ridge on `a` and `b` keeps Newton's steps finite when the
    // classes separate perfectly.
    const RIDGE: f64 = 1e-3;
    for _ in 0..100 {
        let (mut ga, mut gb, mut haa, mut hab, mut hbb) =
            (RIDGE * (a - 1.0), RIDGE * b, RIDGE, 0.0, RIDGE);
        for &(z, y, w) in points {
            let (z, w) = (f64::from(z), f64::from(w));
            let p = f64::from(sigmoid((a * z + b) as f32));
            let r = p - if y { 1.0 } else { 0.0 };
            ga += w * r * z;
            gb += w * r;
            let s = w * (p * (1.0 - p)).max(1e-9);
            haa += s * z * z;
            hab += s * z;
            hbb += s;
        }
        let det = haa * hbb - hab * hab;
        if det.abs() < 1e-12 {
            break;
        }
        let da = (hbb * ga - hab * gb) / det;
        let db = (haa * gb - hab * ga) / det;
        a -= da;
        b -= db;
        if da.abs() + db.abs() < 1e-7 {
            break;
        }
    }
    if a.is_finite() && b.is_finite() && a > 0.0 {
        Calibration {
            a: a as f32,
            b: b as f32,
        }
    } else {
        Calibration::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_a_known_calibration() {
        // Labels drawn as sigmoid(2z - 1), deterministically by quantile.
        let mut points = Vec::new();
        for i in 0..400 {
            let z = (i as f32 - 200.0) / 50.0;
            let p = sigmoid(2.0 * z - 1.0);
            for k in 0..20 {
                points.push((z, (k as f32 + 0.5) / 20.0 < p, 1.0));
            }
        }
        let c = fit(&points);
        assert!((c.a - 2.0).abs() < 0.2 && (c.b + 1.0).abs() < 0.2, "{c:?}");
        assert!(fit(&[(1.0, true, 1.0), (2.0, true, 1.0)]).a > 0.0);
    }
}
