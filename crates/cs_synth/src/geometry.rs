//! Small 2-D geometry: affine transforms named `b_from_a`, polygon area and centroid, a fast
//! deterministic atan2.

/// A 2-D affine transform: `b = m · (a, 1)`, rows `[m00, m01, m02]`, `[m10, m11, m12]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Affine2 {
    pub m: [[f64; 3]; 2],
}

impl Affine2 {
    /// Rotation by `angle_rad` and uniform `scale`, then translation.
    pub fn similarity(scale: f64, angle_rad: f64, translation: [f64; 2]) -> Self {
        let (s, c) = angle_rad.sin_cos();
        Self {
            m: [
                [scale * c, -scale * s, translation[0]],
                [scale * s, scale * c, translation[1]],
            ],
        }
    }

    #[inline]
    pub fn apply(&self, p: [f64; 2]) -> [f64; 2] {
        let m = &self.m;
        [
            m[0][0] * p[0] + m[0][1] * p[1] + m[0][2],
            m[1][0] * p[0] + m[1][1] * p[1] + m[1][2],
        ]
    }

    /// The linear part applied to a direction.
    #[inline]
    pub fn apply_vector(&self, v: [f64; 2]) -> [f64; 2] {
        let m = &self.m;
        [m[0][0] * v[0] + m[0][1] * v[1], m[1][0] * v[0] + m[1][1] * v[1]]
    }

    /// Uniform scaling of the output.
    pub fn scaled(&self, factor: f64) -> Affine2 {
        let mut m = self.m;
        for row in &mut m {
            for v in row.iter_mut() {
                *v *= factor;
            }
        }
        Affine2 { m }
    }

    pub fn inverse(&self) -> Affine2 {
        let m = &self.m;
        let det = m[0][0] * m[1][1] - m[0][1] * m[1][0];
        let inv = 1.0 / det;
        let a = m[1][1] * inv;
        let b = -m[0][1] * inv;
        let c = -m[1][0] * inv;
        let d = m[0][0] * inv;
        Affine2 {
            m: [
                [a, b, -(a * m[0][2] + b * m[1][2])],
                [c, d, -(c * m[0][2] + d * m[1][2])],
            ],
        }
    }

    /// Length scale factor (square root of the determinant's magnitude).
    pub fn scale(&self) -> f64 {
        let m = &self.m;
        (m[0][0] * m[1][1] - m[0][1] * m[1][0]).abs().sqrt()
    }
}

/// Signed shoelace area (positive for counter-clockwise in x-right, y-up terms) and area centroid,
/// in f64 over the f32 vertices as written to the files.
pub(crate) fn area_and_centroid(vertices: &[[f32; 2]]) -> (f64, [f64; 2]) {
    let n = vertices.len();
    let (mut twice, mut cx, mut cy) = (0.0, 0.0, 0.0);
    for i in 0..n {
        let (ax, ay) = (f64::from(vertices[i][0]), f64::from(vertices[i][1]));
        let j = (i + 1) % n;
        let (bx, by) = (f64::from(vertices[j][0]), f64::from(vertices[j][1]));
        let cross = ax * by - bx * ay;
        twice += cross;
        cx += (ax + bx) * cross;
        cy += (ay + by) * cross;
    }
    if twice.abs() < 1e-12 {
        let sx: f64 = vertices.iter().map(|v| f64::from(v[0])).sum();
        let sy: f64 = vertices.iter().map(|v| f64::from(v[1])).sum();
        let k = n.max(1) as f64;
        return (0.0, [sx / k, sy / k]);
    }
    (twice * 0.5, [cx / (3.0 * twice), cy / (3.0 * twice)])
}

/// atan2 with an absolute error of about 1e-5 rad, from a polynomial (no libm call).
#[inline]
pub(crate) fn fast_atan2(y: f32, x: f32) -> f32 {
    use std::f32::consts::{FRAC_PI_2, PI};
    let ax = x.abs();
    let ay = y.abs();
    if ax == 0.0 && ay == 0.0 {
        return 0.0;
    }
    let (a, swap) = if ay > ax { (ax / ay, true) } else { (ay / ax, false) };
    let s = a * a;
    // Polynomial for atan on [0, 1] (max error about 1e-5 rad).
    let r = a * (0.999_866 + s * (-0.330_299_5 + s * (0.180_141 + s * (-0.085_133 + s * 0.020_835_1))));
    let mut r = r;
    if swap {
        r = FRAC_PI_2 - r;
    }
    if x < 0.0 {
        r = PI - r;
    }
    if y < 0.0 { -r } else { r }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_atan2_is_accurate() {
        for i in 0..3600 {
            let t = f64::from(i) * 0.1_f64.to_radians() - std::f64::consts::PI + 1e-4;
            let (s, c) = t.sin_cos();
            for r in [0.01, 1.0, 250.0] {
                let got = fast_atan2((s * r) as f32, (c * r) as f32);
                let want = (s * r).atan2(c * r) as f32;
                assert!((got - want).abs() < 2e-5, "{t}: {got} vs {want}");
            }
        }
    }

    #[test]
    fn affine_inverse_and_scale() {
        let a = Affine2::similarity(2.3, 0.04, [10.0, -3.0]);
        let b = Affine2::similarity(0.5, -0.2, [1.0, 2.0]);
        let p = [3.5, -7.25];
        let q = a.inverse().apply(a.apply(p));
        assert!((q[0] - p[0]).abs() < 1e-9 && (q[1] - p[1]).abs() < 1e-9);
        let ab = b.inverse().apply(b.apply(p));
        assert!((ab[0] - p[0]).abs() < 1e-9 && (ab[1] - p[1]).abs() < 1e-9);
        assert!((a.scale() - 2.3).abs() < 1e-12);
    }

    #[test]
    fn square_area_and_centroid() {
        let (area, c) = area_and_centroid(&[[0.0, 0.0], [2.0, 0.0], [2.0, 2.0], [0.0, 2.0]]);
        assert!((area - 4.0).abs() < 1e-12 && (c[0] - 1.0).abs() < 1e-12 && (c[1] - 1.0).abs() < 1e-12);
    }
}
