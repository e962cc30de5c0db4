//! Agents far from their baseline: robust z-scores (median and MAD) of volume and error rate
//! against the earlier periods of the same length.

use std::collections::{BTreeMap, BTreeSet};

use crate::{Anomaly, ReportSettings};

/// Least earlier periods with data for a baseline; with fewer, no volume or error-rate
/// anomaly is reported (there is no history to be far from).
pub const MIN_BASELINE_PERIODS: usize = 3;

/// Counts of one earlier period.
#[derive(Debug, Clone, Default)]
pub(crate) struct Baseline {
    /// Entries by agent.
    pub totals: BTreeMap<String, u64>,
    /// Errors by agent.
    pub errors: BTreeMap<String, u64>,
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// Returns the robust z-score of `x` against `history`, with the median, and the scale used:
/// `(x - median) / (1.4826 · MAD)`, the scale floored at `floor` so that a flat history does
/// not turn every small change into an anomaly.
pub fn robust_z(x: f64, history: &[f64], floor: f64) -> (f64, f64, f64) {
    let mut h = history.to_vec();
    let m = median(&mut h);
    let mut dev: Vec<f64> = h.iter().map(|v| (v - m).abs()).collect();
    let mad = median(&mut dev);
    let scale = (1.4826 * mad).max(floor);
    ((x - m) / scale, m, scale)
}

/// Finds agents whose volume or error rate is far from the baseline.
pub(crate) fn agent_anomalies(
    totals: &BTreeMap<String, u64>,
    errors: &BTreeMap<String, u64>,
    baseline: &[Baseline],
    s: &ReportSettings,
) -> Vec<Anomaly> {
    // Only periods in which the store held something count: before the first entry there is
    // no history, not a history of zeros.
    let periods: Vec<&Baseline> = baseline.iter().filter(|b| !b.totals.is_empty()).collect();
    if periods.len() < MIN_BASELINE_PERIODS {
        return Vec::new();
    }
    let agents: BTreeSet<&String> = totals
        .keys()
        .chain(periods.iter().flat_map(|b| b.totals.keys()))
        .collect();
    let mut out = Vec::new();
    for agent in agents {
        let x = totals.get(agent).copied().unwrap_or(0) as f64;
        let hist: Vec<f64> = periods
            .iter()
            .map(|b| b.totals.get(agent).copied().unwrap_or(0) as f64)
            .collect();
        // The floor: a tenth of the median, and at least one entry.
        let m0 = {
            let mut h = hist.clone();
            median(&mut h)
        };
        let (z, m, _) = robust_z(x, &hist, (m0 * 0.1).max(1.0));
        if z.abs() > s.anomaly_z && (x - m).abs() >= s.anomaly_min_count as f64 {
            out.push(Anomaly {
                kind: if z > 0.0 { "volume_spike" } else { "volume_drop" }.into(),
                agent: agent.clone(),
                detail: format!(
                    "{x:.0} entries against a median of {m:.0} over {} earlier periods (robust z {z:.1})",
                    hist.len()
                ),
            });
        }
        // Error rate, over the periods in which the agent wrote something.
        let rates: Vec<f64> = periods
            .iter()
            .filter_map(|b| {
                let t = *b.totals.get(agent)?;
                (t > 0).then(|| b.errors.get(agent).copied().unwrap_or(0) as f64 / t as f64)
            })
            .collect();
        let err_now = errors.get(agent).copied().unwrap_or(0);
        if x == 0.0 || rates.len() < MIN_BASELINE_PERIODS {
            continue;
        }
        let rate = err_now as f64 / x;
        let (z, m, _) = robust_z(rate, &rates, 0.01);
        if z > s.anomaly_z && err_now >= s.anomaly_min_count {
            out.push(Anomaly {
                kind: "error_rate".into(),
                agent: agent.clone(),
                detail: format!(
                    "{:.1}% errors ({err_now} of {x:.0}) against a median of {:.1}% over {} earlier periods (robust z {z:.1})",
                    rate * 100.0,
                    m * 100.0,
                    rates.len()
                ),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn period(total: u64, errors: u64) -> Baseline {
        Baseline {
            totals: [("web".to_string(), total)].into(),
            errors: [("web".to_string(), errors)].into(),
        }
    }

    #[test]
    fn robust_z_of_a_known_series() {
        // median 10, MAD 1 → scale 1.4826
        let (z, m, scale) = robust_z(16.0, &[9.0, 10.0, 11.0, 10.0, 12.0], 0.0);
        assert_eq!(m, 10.0);
        assert!((scale - 1.4826).abs() < 1e-9);
        assert!((z - 6.0 / 1.4826).abs() < 1e-9);
    }

    #[test]
    fn flags_spikes_and_error_rates_only_with_history() {
        let s = ReportSettings::default();
        let now_t: BTreeMap<String, u64> = [("web".to_string(), 1000)].into();
        let now_e: BTreeMap<String, u64> = [("web".to_string(), 300)].into();
        let hist: Vec<Baseline> = (0..5).map(|i| period(200 + i * 5, 10 + i)).collect();
        let a = agent_anomalies(&now_t, &now_e, &hist, &s);
        let kinds: Vec<&str> = a.iter().map(|a| a.kind.as_str()).collect();
        assert_eq!(kinds, ["volume_spike", "error_rate"], "{a:?}");
        // Two periods are not a history.
        assert!(agent_anomalies(&now_t, &now_e, &hist[..2], &s).is_empty());
        // A usual period is not an anomaly.
        let usual_t: BTreeMap<String, u64> = [("web".to_string(), 210)].into();
        let usual_e: BTreeMap<String, u64> = [("web".to_string(), 12)].into();
        assert!(agent_anomalies(&usual_t, &usual_e, &hist, &s).is_empty());
        // An agent gone silent is a drop.
        let a = agent_anomalies(&BTreeMap::new(), &BTreeMap::new(), &hist, &s);
        assert_eq!(a[0].kind, "volume_drop");
    }
}
