//! [`GridIndex`]: points bucketed in a uniform grid, for nearest-point and rectangle queries.

/// Points (world µm) bucketed by a uniform grid. Points are stored bin by bin, so a query touches
/// contiguous memory.
#[derive(Debug, Clone, Default)]
pub struct GridIndex {
    origin_um: [f64; 2],
    bin_um: f64,
    cols: usize,
    rows: usize,
    /// Bin `b` holds `ids[bin_start[b]..bin_start[b + 1]]`.
    bin_start: Vec<u32>,
    ids: Vec<u32>,
    positions_um: Vec<[f64; 2]>,
}

/// About this many points per bin on average.
const POINTS_PER_BIN: f64 = 4.0;
const MAX_BINS_PER_AXIS: f64 = 16_384.0;

impl GridIndex {
    /// Indexes points `i` at `(x_um[i], y_um[i])`; non-finite points are left out.
    pub fn build(x_um: &[f64], y_um: &[f64]) -> Self {
        let n = x_um.len().min(y_um.len());
        let finite: Vec<u32> = (0..n as u32)
            .filter(|&i| x_um[i as usize].is_finite() && y_um[i as usize].is_finite())
            .collect();
        if finite.is_empty() {
            return Self {
                bin_um: 1.0,
                bin_start: vec![0],
                ..Self::default()
            };
        }
        let (mut min, mut max) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
        for &i in &finite {
            let p = [x_um[i as usize], y_um[i as usize]];
            for a in 0..2 {
                min[a] = min[a].min(p[a]);
                max[a] = max[a].max(p[a]);
            }
        }
        let span = [(max[0] - min[0]).max(1e-6), (max[1] - min[1]).max(1e-6)];
        let bin_um = (span[0] * span[1] * POINTS_PER_BIN / finite.len() as f64)
            .sqrt()
            .max(span[0].max(span[1]) / MAX_BINS_PER_AXIS)
            .max(1e-6);
        let cols = (span[0] / bin_um).floor() as usize + 1;
        let rows = (span[1] / bin_um).floor() as usize + 1;
        let bin_of = |p: [f64; 2]| -> usize {
            let c = (((p[0] - min[0]) / bin_um) as usize).min(cols - 1);
            let r = (((p[1] - min[1]) / bin_um) as usize).min(rows - 1);
            r * cols + c
        };
        let mut counts = vec![0u32; cols * rows + 1];
        for &i in &finite {
            counts[bin_of([x_um[i as usize], y_um[i as usize]]) + 1] += 1;
        }
        for b in 1..counts.len() {
            counts[b] += counts[b - 1];
        }
        let bin_start = counts.clone();
        let mut next = counts;
        let mut ids = vec![0u32; finite.len()];
        let mut positions_um = vec![[0.0; 2]; finite.len()];
        for &i in &finite {
            let p = [x_um[i as usize], y_um[i as usize]];
            let b = bin_of(p);
            let slot = next[b] as usize;
            ids[slot] = i;
            positions_um[slot] = p;
            next[b] += 1;
        }
        Self {
            origin_um: min,
            bin_um,
            cols,
            rows,
            bin_start,
            ids,
            positions_um,
        }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Bin column/row range covering `min..max`, clamped to the grid.
    fn bin_range(&self, min_um: [f64; 2], max_um: [f64; 2]) -> Option<([usize; 2], [usize; 2])> {
        if self.ids.is_empty() || !(min_um[0] <= max_um[0] && min_um[1] <= max_um[1]) {
            return None;
        }
        let to_bin = |v: f64, origin: f64, count: usize| -> Option<usize> {
            let b = ((v - origin) / self.bin_um).floor();
            if b.is_nan() {
                return None;
            }
            Some(b.clamp(0.0, (count - 1) as f64) as usize)
        };
        let lo = [
            to_bin(min_um[0], self.origin_um[0], self.cols)?,
            to_bin(min_um[1], self.origin_um[1], self.rows)?,
        ];
        let hi = [
            to_bin(max_um[0], self.origin_um[0], self.cols)?,
            to_bin(max_um[1], self.origin_um[1], self.rows)?,
        ];
        // Entirely outside the grid on one side: nothing there.
        let outside = max_um[0] < self.origin_um[0]
            || max_um[1] < self.origin_um[1]
            || min_um[0] > self.origin_um[0] + self.cols as f64 * self.bin_um
            || min_um[1] > self.origin_um[1] + self.rows as f64 * self.bin_um;
        (!outside).then_some((lo, hi))
    }

    /// Calls `visit(id, pos_um)` for every point with `min <= pos <= max`.
    pub fn for_each_in_rect(&self, min_um: [f64; 2], max_um: [f64; 2], mut visit: impl FnMut(u32, [f64; 2])) {
        let Some((lo, hi)) = self.bin_range(min_um, max_um) else {
            return;
        };
        for row in lo[1]..=hi[1] {
            let a = self.bin_start[row * self.cols + lo[0]] as usize;
            let b = self.bin_start[row * self.cols + hi[0] + 1] as usize;
            for slot in a..b {
                let p = self.positions_um[slot];
                if p[0] >= min_um[0] && p[0] <= max_um[0] && p[1] >= min_um[1] && p[1] <= max_um[1] {
                    visit(self.ids[slot], p);
                }
            }
        }
    }

    /// The point nearest `pos_um` no farther than `radius_um`, with its distance.
    pub fn nearest_within(&self, pos_um: [f64; 2], radius_um: f64) -> Option<(u32, f64)> {
        let mut best: Option<(u32, f64)> = None;
        let r = radius_um.max(0.0);
        self.for_each_in_rect(
            [pos_um[0] - r, pos_um[1] - r],
            [pos_um[0] + r, pos_um[1] + r],
            |id, p| {
                let d = ((p[0] - pos_um[0]).powi(2) + (p[1] - pos_um[1]).powi(2)).sqrt();
                if d <= r && best.is_none_or(|(best_id, best_d)| d < best_d || (d == best_d && id < best_id)) {
                    best = Some((id, d));
                }
            },
        );
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pseudo_random_points(n: usize) -> (Vec<f64>, Vec<f64>) {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let x = (0..n).map(|_| next() * 1000.0 - 200.0).collect();
        let y = (0..n).map(|_| next() * 500.0 + 50.0).collect();
        (x, y)
    }

    #[test]
    fn rect_and_nearest_agree_with_brute_force() {
        let (x, y) = pseudo_random_points(5000);
        let index = GridIndex::build(&x, &y);
        assert_eq!(index.len(), 5000);
        for (min, max) in [
            ([0.0, 100.0], [100.0, 200.0]),
            ([-500.0, -500.0], [2000.0, 2000.0]),
            ([790.0, 540.0], [1000.0, 900.0]),
            ([5000.0, 5000.0], [6000.0, 6000.0]),
        ] {
            let mut found = Vec::new();
            index.for_each_in_rect(min, max, |id, _| found.push(id));
            found.sort_unstable();
            let expected: Vec<u32> = (0..5000u32)
                .filter(|&i| {
                    let (px, py) = (x[i as usize], y[i as usize]);
                    px >= min[0] && px <= max[0] && py >= min[1] && py <= max[1]
                })
                .collect();
            assert_eq!(found, expected, "{min:?}..{max:?}");
        }
        for probe in [[10.0, 100.0], [-199.0, 51.0], [400.0, 300.0], [3000.0, 0.0]] {
            let got = index.nearest_within(probe, 25.0);
            let brute = (0..5000u32)
                .map(|i| {
                    (
                        i,
                        ((x[i as usize] - probe[0]).powi(2) + (y[i as usize] - probe[1]).powi(2)).sqrt(),
                    )
                })
                .filter(|(_, d)| *d <= 25.0)
                .min_by(|a, b| a.1.total_cmp(&b.1));
            assert_eq!(got.map(|g| g.0), brute.map(|b| b.0), "{probe:?}");
        }
    }

    #[test]
    fn degenerate_inputs() {
        let empty = GridIndex::build(&[], &[]);
        assert!(empty.nearest_within([0.0, 0.0], 10.0).is_none());
        let index = GridIndex::build(&[1.0, f64::NAN, 1.0], &[1.0, 2.0, 1.0]);
        assert_eq!(index.len(), 2, "NaN left out");
        assert_eq!(
            index.nearest_within([1.0, 1.0], 0.0),
            Some((0, 0.0)),
            "ties go to the lower id"
        );
        let mut n = 0;
        index.for_each_in_rect([f64::NAN, 0.0], [5.0, 5.0], |_, _| n += 1);
        assert_eq!(n, 0);
    }
}
