//! How long each store operation takes, as the histogram `store_operation_duration_seconds`
//! by `operation` and `outcome`: an observer the service reports every store call to (see
//! `messages_core::storage::ObservedStore`), so a new operation is timed without code here.

use std::time::Duration;

use messages_core::storage::{Operation, Outcome, StoreObserver};

/// Records every store call in the histogram of its operation and outcome. Each histogram is
/// registered once, here, so a call does not look one up by its labels.
pub struct StoreTiming {
    /// By `operation as usize * Outcome::ALL.len() + outcome as usize`.
    histograms: Vec<metrics::Histogram>,
}

impl StoreTiming {
    /// The histograms of every operation and outcome. Call after [`crate::metrics::install`],
    /// or they record nowhere.
    pub fn new() -> Self {
        let histograms = Operation::ALL
            .iter()
            .flat_map(|operation| {
                Outcome::ALL.iter().map(move |outcome| {
                    metrics::histogram!(
                        "store_operation_duration_seconds",
                        "operation" => operation.label(),
                        "outcome" => outcome.label()
                    )
                })
            })
            .collect();
        StoreTiming { histograms }
    }
}

impl Default for StoreTiming {
    fn default() -> Self {
        StoreTiming::new()
    }
}

impl StoreObserver for StoreTiming {
    fn observe(&self, operation: Operation, outcome: Outcome, elapsed: Duration) {
        let index = operation as usize * Outcome::ALL.len() + outcome as usize;
        if let Some(histogram) = self.histograms.get(index) {
            histogram.record(elapsed.as_secs_f64());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_and_outcome_has_its_own_histogram() {
        let mut seen = std::collections::HashSet::new();
        for operation in Operation::ALL {
            for outcome in Outcome::ALL {
                assert!(seen.insert(operation as usize * Outcome::ALL.len() + outcome as usize));
            }
        }
        assert_eq!(seen.len(), Operation::ALL.len() * Outcome::ALL.len());
        assert!(seen.iter().all(|&i| i < seen.len()));
    }
}
