//! Medians, ranges, paired ratios and growth exponents.

/// Median, minimum and maximum of some samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// The median (mean of the two middle values for an even count).
    pub median: f64,
    /// The smallest sample.
    pub min: f64,
    /// The largest sample.
    pub max: f64,
}

/// The summary of `samples`; `None` when there are none.
pub fn summarize(samples: &[f64]) -> Option<Summary> {
    let mut sorted: Vec<f64> = samples.iter().copied().filter(|s| s.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let (first, last) = (*sorted.first()?, *sorted.last()?);
    let mid = sorted.len() / 2;
    let median = if sorted.len() % 2 == 1 { sorted[mid] } else { (sorted[mid - 1] + sorted[mid]) / 2.0 };
    Some(Summary { median, min: first, max: last })
}

/// The ratios `new[i] / old[i]` of paired measurements (the same repetition, run back to
/// back), in order. A pair is left out when either side is `None` (not measured, or not
/// finished), not finite, or `old` is not positive.
pub fn paired_ratios(new: &[Option<f64>], old: &[Option<f64>]) -> Vec<f64> {
    new.iter()
        .zip(old)
        .filter_map(|pair| match pair {
            (Some(n), Some(o)) if n.is_finite() && o.is_finite() && *o > 0.0 => Some(n / o),
            _ => None,
        })
        .collect()
}

/// The median and range of the [`paired_ratios`]: how much slower (> 1) or faster (< 1) `new`
/// is than `old`, and how far single pairs stray. `None` when no pair counts.
pub fn ratio_summary(new: &[Option<f64>], old: &[Option<f64>]) -> Option<Summary> {
    summarize(&paired_ratios(new, old))
}

/// The least-squares slope of `log y` against `log x`: the exponent `k` of `y ∝ x^k`.
/// `None` with fewer than two distinct positive `x`.
pub fn growth_exponent(points: &[(f64, f64)]) -> Option<f64> {
    let logs: Vec<(f64, f64)> =
        points.iter().filter(|(x, y)| *x > 0.0 && *y > 0.0).map(|(x, y)| (x.ln(), y.ln())).collect();
    let n = logs.len() as f64;
    let mean_x = logs.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = logs.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = logs.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    let sxy: f64 = logs.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    (logs.len() >= 2 && sxx > 0.0).then(|| sxy / sxx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(summarize(&[3.0, 1.0, 2.0]).map(|s| s.median), Some(2.0));
        assert_eq!(summarize(&[4.0, 1.0, 2.0, 3.0]).map(|s| (s.median, s.min, s.max)), Some((2.5, 1.0, 4.0)));
        assert_eq!(summarize(&[]), None);
    }

    #[test]
    fn ratios_pair_by_repetition() {
        let new = [Some(2.0), Some(3.0), Some(1.0)];
        let old = [Some(1.0), Some(2.0), Some(4.0)];
        assert_eq!(paired_ratios(&new, &old), vec![2.0, 1.5, 0.25]);
        // The median of the ratios, not the ratio of the medians (2.0 / 2.0 = 1.0).
        assert_eq!(ratio_summary(&new, &old), Some(Summary { median: 1.5, min: 0.25, max: 2.0 }));
    }

    #[test]
    fn ratios_leave_out_unfinished_and_empty_pairs() {
        let new = [Some(1.0), None, Some(5.0), Some(2.0), Some(f64::NAN), Some(9.0)];
        let old = [Some(2.0), Some(1.0), None, Some(0.0), Some(1.0)];
        assert_eq!(paired_ratios(&new, &old), vec![0.5], "one side missing, old 0, NaN, unpaired");
        assert_eq!(ratio_summary(&[None], &[Some(1.0)]), None);
        assert_eq!(ratio_summary(&[], &[]), None);
    }

    #[test]
    fn exponent_of_a_power_law() {
        let points: Vec<(f64, f64)> =
            [10.0, 100.0, 1000.0].iter().map(|x: &f64| (*x, 0.5 * x.powf(1.5))).collect();
        let k = growth_exponent(&points).unwrap_or(f64::NAN);
        assert!((k - 1.5).abs() < 1e-9, "{k}");
        assert_eq!(growth_exponent(&[(10.0, 1.0)]), None);
    }
}
