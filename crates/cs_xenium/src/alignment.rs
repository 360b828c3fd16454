//! H&E-to-Xenium alignment as Xenium Explorer exports it: a headerless CSV of a 3x3 affine matrix
//! mapping an H&E level-0 pixel `(x, y, 1)` to a Xenium morphology pixel. Also the least-squares
//! affine fit used for landmark alignment, and writing the same CSV layout back.

use std::path::Path;

use crate::error::{XeniumError, io_error};

/// A 2-D affine map as a row-major 3x3 matrix with last row `0 0 1`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Affine2 {
    pub rows: [[f64; 3]; 3],
}

impl Affine2 {
    pub const IDENTITY: Self = Self {
        rows: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
    };

    pub fn apply(&self, p: [f64; 2]) -> [f64; 2] {
        let r = &self.rows;
        [
            r[0][0] * p[0] + r[0][1] * p[1] + r[0][2],
            r[1][0] * p[0] + r[1][1] * p[1] + r[1][2],
        ]
    }

    /// `self` then scaled by `factor` (e.g. morphology pixels to µm with the pixel size).
    pub fn scaled(&self, factor: f64) -> Self {
        let mut rows = self.rows;
        for row in rows.iter_mut().take(2) {
            for v in row.iter_mut() {
                *v *= factor;
            }
        }
        Self { rows }
    }

    /// The six numbers column by column `[a, b, c, d, tx, ty]` for `x' = a x + c y + tx`,
    /// `y' = b x + d y + ty` (glam's `DAffine2::from_cols_array` order).
    pub fn to_cols_array(&self) -> [f64; 6] {
        let r = &self.rows;
        [r[0][0], r[1][0], r[0][1], r[1][1], r[0][2], r[1][2]]
    }

    fn determinant(&self) -> f64 {
        self.rows[0][0] * self.rows[1][1] - self.rows[0][1] * self.rows[1][0]
    }
}

fn bad(path: &Path, row: usize, reason: impl Into<String>) -> XeniumError {
    XeniumError::BadValue {
        file: path.to_path_buf(),
        column: "alignment matrix".to_owned(),
        row,
        reason: reason.into(),
    }
}

/// Reads a Xenium Explorer alignment CSV (H&E pixel -> Xenium morphology pixel).
pub fn read_alignment_csv(path: &Path) -> Result<Affine2, XeniumError> {
    let text = std::fs::read_to_string(path).map_err(|e| io_error(path, e))?;
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    if lines.len() != 3 {
        return Err(XeniumError::Corrupt {
            file: path.to_path_buf(),
            format: "alignment CSV",
            reason: format!("expected 3 rows of 3 numbers, found {} rows", lines.len()),
        });
    }
    let mut rows = [[0.0; 3]; 3];
    for (r, line) in lines.iter().enumerate() {
        let fields: Vec<&str> = line.split([',', ' ', '\t']).filter(|f| !f.is_empty()).collect();
        if fields.len() != 3 {
            return Err(bad(path, r + 1, format!("expected 3 numbers, found {:?}", line)));
        }
        for (c, field) in fields.iter().enumerate() {
            let v: f64 = field
                .trim_matches('"')
                .parse()
                .map_err(|_| bad(path, r + 1, format!("{field:?} is not a number")))?;
            if !v.is_finite() {
                return Err(bad(path, r + 1, format!("{field} is not finite")));
            }
            rows[r][c] = v;
        }
    }
    let last = rows[2];
    if (last[0].abs() > 1e-9) || (last[1].abs() > 1e-9) || (last[2] - 1.0).abs() > 1e-9 {
        return Err(bad(
            path,
            3,
            format!("the last row must be 0, 0, 1 for an affine map (found {last:?})"),
        ));
    }
    let affine = Affine2 { rows };
    if affine.determinant().abs() < 1e-12 {
        return Err(bad(path, 1, "the matrix is singular (it collapses the image)"));
    }
    Ok(affine)
}

/// Writes `affine` in Xenium Explorer's layout (atomically, through `cs_files`).
pub fn write_alignment_csv(path: &Path, affine: &Affine2) -> Result<(), XeniumError> {
    let text: String = affine
        .rows
        .iter()
        .map(|r| format!("{},{},{}\n", r[0], r[1], r[2]))
        .collect();
    cs_files::write_atomically(path, text.as_bytes()).map_err(|e| io_error(path, e))
}

/// A least-squares affine fit and how well it fits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AffineFit {
    pub affine: Affine2,
    /// Root-mean-square distance between mapped sources and targets (target units).
    pub rms_residual: f64,
    pub max_residual: f64,
}

/// Fits `target ≈ A * source` by least squares over 3 or more point pairs (not all on a line).
pub fn fit_affine(pairs: &[([f64; 2], [f64; 2])]) -> Option<AffineFit> {
    if pairs.len() < 3 {
        return None;
    }
    // Normal equations for [a b c] with rows (x, y, 1); the same 3x3 system for both outputs.
    // Centre the sources for conditioning.
    let n = pairs.len() as f64;
    let mean = pairs
        .iter()
        .fold([0.0, 0.0], |m, (s, _)| [m[0] + s[0] / n, m[1] + s[1] / n]);
    let mut ata = [[0.0; 3]; 3];
    let mut atb = [[0.0; 3]; 2];
    for (s, t) in pairs {
        let row = [s[0] - mean[0], s[1] - mean[1], 1.0];
        for i in 0..3 {
            for j in 0..3 {
                ata[i][j] += row[i] * row[j];
            }
            atb[0][i] += row[i] * t[0];
            atb[1][i] += row[i] * t[1];
        }
    }
    let solve_x = solve3(ata, atb[0])?;
    let solve_y = solve3(ata, atb[1])?;
    // Undo the centring: t = a (x - mx) + b (y - my) + c.
    let rows = [
        [
            solve_x[0],
            solve_x[1],
            solve_x[2] - solve_x[0] * mean[0] - solve_x[1] * mean[1],
        ],
        [
            solve_y[0],
            solve_y[1],
            solve_y[2] - solve_y[0] * mean[0] - solve_y[1] * mean[1],
        ],
        [0.0, 0.0, 1.0],
    ];
    let affine = Affine2 { rows };
    if affine.determinant().abs() < 1e-12 {
        return None;
    }
    let residuals: Vec<f64> = pairs
        .iter()
        .map(|(s, t)| {
            let m = affine.apply(*s);
            ((m[0] - t[0]).powi(2) + (m[1] - t[1]).powi(2)).sqrt()
        })
        .collect();
    let rms_residual = (residuals.iter().map(|r| r * r).sum::<f64>() / n).sqrt();
    let max_residual = residuals.iter().copied().fold(0.0, f64::max);
    Some(AffineFit {
        affine,
        rms_residual,
        max_residual,
    })
}

/// Gaussian elimination with partial pivoting; None when singular (collinear points).
fn solve3(mut a: [[f64; 3]; 3], mut b: [f64; 3]) -> Option<[f64; 3]> {
    let scale = a.iter().flatten().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-300);
    for col in 0..3 {
        let pivot = (col..3).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 * scale {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        let pivot_row = a[col];
        for row in 0..3 {
            if row != col {
                let f = a[row][col] / pivot_row[col];
                for (value, pivot_value) in a[row].iter_mut().zip(pivot_row).skip(col) {
                    *value -= f * pivot_value;
                }
                b[row] -= f * b[col];
            }
        }
    }
    Some([b[0] / a[0][0], b[1] / a[1][1], b[2] / a[2][2]])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn similarity(angle_deg: f64, scale: f64, flip: bool, t: [f64; 2]) -> Affine2 {
        let (s, c) = angle_deg.to_radians().sin_cos();
        let f = if flip { -1.0 } else { 1.0 };
        Affine2 {
            rows: [
                [scale * c, -scale * s * f, t[0]],
                [scale * s, scale * c * f, t[1]],
                [0.0, 0.0, 1.0],
            ],
        }
    }

    #[test]
    fn fit_recovers_rotation_flip_and_scale_exactly() {
        let truth = similarity(23.0, 2.35, true, [-120.0, 4500.0]);
        let sources = [[0.0, 0.0], [1000.0, 0.0], [0.0, 800.0], [640.0, 420.0], [90.0, 1500.0]];
        let pairs: Vec<_> = sources.iter().map(|s| (*s, truth.apply(*s))).collect();
        let fit = fit_affine(&pairs).unwrap();
        for r in 0..3 {
            for c in 0..3 {
                assert!((fit.affine.rows[r][c] - truth.rows[r][c]).abs() < 1e-8, "{fit:?}");
            }
        }
        assert!(fit.rms_residual < 1e-8);
    }

    #[test]
    fn residual_reports_a_misplaced_landmark() {
        let truth = similarity(0.0, 1.0, false, [0.0, 0.0]);
        let mut pairs: Vec<_> = [[0.0, 0.0], [100.0, 0.0], [0.0, 100.0], [100.0, 100.0]]
            .iter()
            .map(|s| (*s, truth.apply(*s)))
            .collect();
        pairs[3].1 = [110.0, 100.0];
        let fit = fit_affine(&pairs).unwrap();
        assert!(fit.rms_residual > 1.0 && fit.max_residual <= 10.0, "{fit:?}");
        assert!(fit_affine(&pairs[..2]).is_none(), "two pairs do not fix an affine map");
        let collinear = [
            ([0.0, 0.0], [0.0, 0.0]),
            ([1.0, 1.0], [1.0, 1.0]),
            ([2.0, 2.0], [2.0, 2.0]),
        ];
        assert!(fit_affine(&collinear).is_none());
    }

    #[test]
    fn csv_round_trip_and_errors_name_the_file() {
        let dir = std::env::temp_dir().join(format!("alignment_test_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("he_alignment.csv");
        let affine = similarity(-3.5, 2.352941176, false, [512.25, -64.0]);
        write_alignment_csv(&path, &affine).unwrap();
        assert_eq!(read_alignment_csv(&path).unwrap(), affine);
        // Column order for glam: x' = a x + c y + tx, y' = b x + d y + ty.
        let [a, b, c, d, tx, ty] = affine.to_cols_array();
        let p = affine.apply([3.0, -2.0]);
        assert!((a * 3.0 - c * 2.0 + tx - p[0]).abs() < 1e-9 && (b * 3.0 - d * 2.0 + ty - p[1]).abs() < 1e-9);
        // Xenium Explorer writes scientific notation too.
        std::fs::write(&path, "1.5e0,0,10\n0,1.5E+00,-2.5e1\n0,0,1\n").unwrap();
        let read = read_alignment_csv(&path).unwrap();
        assert_eq!(read.apply([2.0, 2.0]), [13.0, -22.0]);
        for (text, needle) in [
            ("1,0,0\n0,1,0\n", "3 rows"),
            ("1,0,0\n0,x,0\n0,0,1\n", "\"x\" is not a number"),
            ("1,0,0\n0,1,0\n0,1,1\n", "0, 0, 1"),
            ("0,0,0\n0,0,0\n0,0,1\n", "singular"),
        ] {
            std::fs::write(&path, text).unwrap();
            let err = read_alignment_csv(&path).unwrap_err().to_string();
            assert!(err.contains("he_alignment.csv") && err.contains(needle), "{err}");
        }
        assert!(
            read_alignment_csv(&dir.join("missing.csv"))
                .unwrap_err()
                .to_string()
                .contains("missing.csv")
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
