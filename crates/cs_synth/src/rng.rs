//! Seeded pseudo-random numbers, owned here so that the output never depends on a crate version.
//!
//! [`Rng`] is SplitMix64. Independent streams come from hashing (seed, domain, index), so each
//! cell, block or tile draws from its own stream and parallel generation writes the same bytes
//! whatever the number of threads.

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// Stream domains: one per kind of thing that draws random numbers.
pub(crate) mod domain {
    pub const LAYOUT: u64 = 1;
    pub const DARTS: u64 = 2;
    pub const SHAPE: u64 = 3;
    pub const COUNTS: u64 = 4;
    pub const CLUSTERS: u64 = 5;
    pub const TRANSCRIPTS: u64 = 6;
    pub const VESSELS: u64 = 7;
    pub const AGGREGATES: u64 = 8;
    pub const NOISE: u64 = 9;
    pub const PIXELS: u64 = 10;
    pub const NUCLEI: u64 = 11;
    pub const OTHER_CODEWORDS: u64 = 12;
    pub const PROTEINS: u64 = 13;
    pub const LABELS: u64 = 14;
}

/// SplitMix64's finaliser: a good 64-bit mixing function.
#[inline]
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Hash of three words (seed, domain, index).
#[inline]
pub(crate) fn hash3(a: u64, b: u64, c: u64) -> u64 {
    mix64(mix64(mix64(a ^ GOLDEN).wrapping_add(b)).wrapping_add(c))
}

/// A SplitMix64 stream.
#[derive(Debug, Clone)]
pub(crate) struct Rng {
    state: u64,
}

impl Rng {
    /// The stream `index` of `domain` for `seed`.
    pub fn new(seed: u64, domain: u64, index: u64) -> Self {
        Self {
            state: hash3(seed, domain, index),
        }
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN);
        mix64(self.state)
    }

    /// Uniform in [0, 1).
    #[inline]
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [lo, hi).
    #[inline]
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.f64()
    }

    /// Uniform in [lo, hi) as f32.
    #[inline]
    pub fn range32(&mut self, lo: f32, hi: f32) -> f32 {
        self.range(f64::from(lo), f64::from(hi)) as f32
    }

    /// Uniform integer in 0..n (n > 0).
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    #[inline]
    pub fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }

    /// Standard normal (Box–Muller, one value per call).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.f64();
        let u2 = self.f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Gamma(shape, scale 1) by Marsaglia and Tsang.
    pub fn gamma(&mut self, shape: f64) -> f64 {
        if shape < 1.0 {
            let u = self.f64().max(1e-300);
            return self.gamma(shape + 1.0) * u.powf(1.0 / shape);
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.normal();
            let v = 1.0 + c * x;
            if v <= 0.0 {
                continue;
            }
            let v = v * v * v;
            let u = self.f64();
            if u < 1.0 - 0.0331 * x * x * x * x || u.max(1e-300).ln() < 0.5 * x * x + d * (1.0 - v + v.ln()) {
                return d * v;
            }
        }
    }

    /// Poisson(lambda): Knuth's product method below 30, a rounded normal above.
    pub fn poisson(&mut self, lambda: f64) -> u32 {
        if lambda <= 0.0 || !lambda.is_finite() {
            return 0;
        }
        if lambda < 30.0 {
            let limit = (-lambda).exp();
            let mut k = 0;
            let mut p = 1.0;
            loop {
                p *= self.f64();
                if p <= limit {
                    return k;
                }
                k += 1;
            }
        }
        (lambda + lambda.sqrt() * self.normal()).round().max(0.0) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_independent() {
        let a: Vec<u64> = (0..4).map(|_| Rng::new(1, 2, 3).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(Rng::new(1, 2, 3).next_u64(), Rng::new(1, 2, 4).next_u64());
        assert_ne!(Rng::new(1, 2, 3).next_u64(), Rng::new(2, 2, 3).next_u64());
    }

    #[test]
    fn distributions_have_the_right_means() {
        let mut rng = Rng::new(7, 0, 0);
        let n = 20_000;
        let mean = |f: &mut dyn FnMut() -> f64| (0..n).map(|_| f()).sum::<f64>() / f64::from(n);
        assert!((mean(&mut || rng.f64()) - 0.5).abs() < 0.01);
        let mut rng = Rng::new(7, 0, 1);
        assert!(mean(&mut || rng.normal()).abs() < 0.03);
        let mut rng = Rng::new(7, 0, 2);
        assert!((mean(&mut || rng.gamma(2.5)) - 2.5).abs() < 0.06);
        let mut rng = Rng::new(7, 0, 3);
        assert!((mean(&mut || f64::from(rng.poisson(3.2))) - 3.2).abs() < 0.06);
        let mut rng = Rng::new(7, 0, 4);
        assert!((mean(&mut || f64::from(rng.poisson(80.0))) - 80.0).abs() < 0.5);
    }
}
