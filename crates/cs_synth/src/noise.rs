//! Smooth value noise and fractal sums of it, as pure functions of position and seed (integer
//! hashing and plain arithmetic only, so every thread and every run gets the same numbers).

use crate::rng::{hash3, mix64};

/// Value noise on the integer lattice: `value(x, y)` is in [0, 1] and smooth (C1).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Noise {
    seed: u64,
}

#[inline]
fn smooth(t: f32) -> f32 {
    t * t * (3.0 - 2.0 * t)
}

impl Noise {
    pub fn new(seed: u64, domain: u64, which: u64) -> Self {
        Self {
            seed: hash3(seed, domain, which),
        }
    }

    #[inline]
    fn lattice(&self, ix: i64, iy: i64) -> f32 {
        let h = mix64(
            self.seed
                ^ (ix as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
                ^ (iy as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F),
        );
        (h >> 40) as f32 * (1.0 / 16_777_216.0)
    }

    /// Smooth noise in [0, 1] with features about one unit apart.
    #[inline]
    pub fn value(&self, x: f64, y: f64) -> f32 {
        let fx = x.floor();
        let fy = y.floor();
        let ix = fx as i64;
        let iy = fy as i64;
        let tx = smooth((x - fx) as f32);
        let ty = smooth((y - fy) as f32);
        let a = self.lattice(ix, iy);
        let b = self.lattice(ix + 1, iy);
        let c = self.lattice(ix, iy + 1);
        let d = self.lattice(ix + 1, iy + 1);
        let top = a + (b - a) * tx;
        let bottom = c + (d - c) * tx;
        top + (bottom - top) * ty
    }

    /// Fractal sum of `octaves` octaves (each twice the frequency, half the amplitude), in [0, 1].
    pub fn fbm(&self, x: f64, y: f64, octaves: u32) -> f32 {
        let mut sum = 0.0;
        let mut amplitude = 1.0;
        let mut total = 0.0;
        let mut frequency = 1.0;
        for octave in 0..octaves {
            // Offset each octave so that lattice points of different octaves do not line up.
            let shift = f64::from(octave) * 17.31;
            sum += amplitude * self.value(x * frequency + shift, y * frequency - shift);
            total += amplitude;
            amplitude *= 0.5;
            frequency *= 2.0;
        }
        sum / total
    }
}

/// A hash of an integer pixel position, uniform in [0, 1): per-pixel grain.
#[inline]
pub(crate) fn grain(seed: u64, x: i64, y: i64) -> f32 {
    let h =
        mix64(seed ^ (x as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93) ^ (y as u64).wrapping_mul(0xA076_1D64_78BD_642F));
    (h >> 40) as f32 * (1.0 / 16_777_216.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_is_bounded_smooth_and_seeded() {
        let n = Noise::new(1, 2, 3);
        let mut min = f32::MAX;
        let mut max = f32::MIN;
        for i in 0..2000 {
            let x = f64::from(i) * 0.137 - 50.0;
            let y = f64::from(i) * 0.071 + 3.0;
            let v = n.fbm(x, y, 4);
            min = min.min(v);
            max = max.max(v);
            let near = n.value(x + 1e-4, y);
            assert!((near - n.value(x, y)).abs() < 1e-2);
        }
        assert!(min >= 0.0 && max <= 1.0 && max - min > 0.3);
        assert_ne!(n.value(0.5, 0.5), Noise::new(2, 2, 3).value(0.5, 0.5));
    }
}
