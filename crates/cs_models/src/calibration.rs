//! How far a classifier's confidences can be trusted, and making them trustworthy: expected
//! calibration error, and temperature scaling (Guo et al., 2017: one scalar T divides the
//! logits; fitted by minimising the negative log-likelihood on cells the model did not train on,
//! it changes no prediction, only how sure each one claims to be).

/// Softmax of one row of logits, in place.
pub(crate) fn softmax_in_place(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for v in row.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    row.iter_mut().for_each(|v| *v /= sum.max(f32::MIN_POSITIVE));
}

/// Mean negative log-likelihood of `targets` under softmax(logits / temperature); `logits` holds
/// one row of `classes` values per target.
pub fn mean_nll(logits: &[f32], classes: usize, targets: &[u16], temperature: f64) -> f64 {
    if classes == 0 || targets.is_empty() {
        return 0.0;
    }
    let total: f64 = logits
        .chunks(classes)
        .zip(targets)
        .map(|(row, &t)| {
            let scaled = row.iter().map(|&z| f64::from(z) / temperature);
            let max = scaled.clone().fold(f64::NEG_INFINITY, f64::max);
            let log_sum = max + scaled.map(|z| (z - max).exp()).sum::<f64>().ln();
            log_sum - f64::from(row.get(usize::from(t)).copied().unwrap_or(0.0)) / temperature
        })
        .sum();
    total / targets.len() as f64
}

/// The temperature in [`MIN_TEMPERATURE`, `MAX_TEMPERATURE`] that minimises [`mean_nll`] (golden
/// section on log T; the likelihood is unimodal in 1/T). 1 when there is nothing to fit on.
pub fn fit_temperature(logits: &[f32], classes: usize, targets: &[u16]) -> f32 {
    if targets.is_empty() || classes < 2 || logits.len() != targets.len() * classes {
        return 1.0;
    }
    let nll = |log_t: f64| mean_nll(logits, classes, targets, log_t.exp());
    let ratio = (5f64.sqrt() - 1.0) / 2.0;
    let (mut lo, mut hi) = (MIN_TEMPERATURE.ln(), MAX_TEMPERATURE.ln());
    let mut a = hi - ratio * (hi - lo);
    let mut b = lo + ratio * (hi - lo);
    let (mut fa, mut fb) = (nll(a), nll(b));
    for _ in 0..80 {
        if fa <= fb {
            hi = b;
            (b, fb) = (a, fa);
            a = hi - ratio * (hi - lo);
            fa = nll(a);
        } else {
            lo = a;
            (a, fa) = (b, fb);
            b = lo + ratio * (hi - lo);
            fb = nll(b);
        }
    }
    ((lo + hi) / 2.0).exp() as f32
}

pub const MIN_TEMPERATURE: f64 = 0.05;
pub const MAX_TEMPERATURE: f64 = 20.0;

/// Expected calibration error over `bins` equal-width confidence bins: the mean, weighted by
/// bin size, of |accuracy − mean confidence| (0 for a perfectly calibrated model).
pub fn expected_calibration_error(confidence_and_correct: &[(f32, bool)], bins: usize) -> f64 {
    let bins = bins.max(1);
    let mut sums = vec![(0usize, 0f64, 0usize); bins];
    for &(confidence, correct) in confidence_and_correct {
        let c = f64::from(confidence).clamp(0.0, 1.0);
        let b = ((c * bins as f64) as usize).min(bins - 1);
        sums[b].0 += 1;
        sums[b].1 += c;
        sums[b].2 += usize::from(correct);
    }
    let n = confidence_and_correct.len().max(1) as f64;
    sums.iter()
        .filter(|(count, ..)| *count > 0)
        .map(|&(count, confidence, correct)| {
            let count_f = count as f64;
            (count_f / n) * (correct as f64 / count_f - confidence / count_f).abs()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SeededRng;

    #[test]
    fn calibration_error_is_zero_when_confidence_matches_accuracy() {
        // Confidence 0.75, right three times in four: calibrated.
        let calibrated: Vec<(f32, bool)> = (0..400).map(|i| (0.75, i % 4 != 0)).collect();
        assert!(expected_calibration_error(&calibrated, 10) < 1e-9);
        // Confidence 0.95, right half the time: 0.45 off.
        let over: Vec<(f32, bool)> = (0..400).map(|i| (0.95, i % 2 == 0)).collect();
        assert!((expected_calibration_error(&over, 10) - 0.45).abs() < 1e-6);
    }

    /// Logits of a calibrated 3-class model (labels drawn from softmax(z)) multiplied by `scale`.
    fn overconfident(scale: f32, n: usize) -> (Vec<f32>, Vec<u16>) {
        let mut rng = SeededRng::new(11);
        let (mut logits, mut targets) = (Vec::new(), Vec::new());
        for _ in 0..n {
            let z: Vec<f32> = (0..3).map(|_| 2.0 * rng.normal() as f32).collect();
            let mut p = z.clone();
            softmax_in_place(&mut p);
            let u = rng.next_f64() as f32;
            let t = if u < p[0] {
                0
            } else if u < p[0] + p[1] {
                1
            } else {
                2
            };
            logits.extend(z.iter().map(|v| v * scale));
            targets.push(t);
        }
        (logits, targets)
    }

    #[test]
    fn temperature_undoes_a_known_overconfidence() {
        // Logits three times too large: the fitted temperature is 3 (to sampling noise), and the
        // likelihood at it beats T = 1.
        let (logits, targets) = overconfident(3.0, 20_000);
        let t = fit_temperature(&logits, 3, &targets);
        assert!((t - 3.0).abs() < 0.15, "{t}");
        assert!(mean_nll(&logits, 3, &targets, f64::from(t)) < mean_nll(&logits, 3, &targets, 1.0));
        // A calibrated model keeps T near 1.
        let (logits, targets) = overconfident(1.0, 20_000);
        let t = fit_temperature(&logits, 3, &targets);
        assert!((t - 1.0).abs() < 0.05, "{t}");
        // Nothing to fit on: 1.
        assert_eq!(fit_temperature(&[], 3, &[]), 1.0);
    }
}
