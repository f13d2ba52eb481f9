//! Many/medium/few-shot class groups used to report long-tailed accuracy.

use serde::{Deserialize, Serialize};

/// Frequency group of a class by its number of training images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Group {
    /// More than `many_threshold` training images.
    Many,
    /// Between the two thresholds, inclusive.
    Medium,
    /// Fewer than `few_threshold` training images.
    Few,
}

/// Thresholds of the grouping rule (the literature's defaults are 100 and 20).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupThresholds {
    pub many: usize,
    pub few: usize,
}

impl Default for GroupThresholds {
    fn default() -> Self {
        GroupThresholds { many: 100, few: 20 }
    }
}

impl GroupThresholds {
    /// Group of a class with `count` training images.
    pub fn group(&self, count: usize) -> Group {
        if count > self.many {
            Group::Many
        } else if count < self.few {
            Group::Few
        } else {
            Group::Medium
        }
    }

    /// Group of every class, in class order.
    pub fn groups(&self, class_counts: &[usize]) -> Vec<Group> {
        class_counts.iter().map(|&n| self.group(n)).collect()
    }
}

impl From<&crate::config::data::DataConfig> for GroupThresholds {
    fn from(cfg: &crate::config::data::DataConfig) -> Self {
        GroupThresholds {
            many: cfg.many_threshold,
            few: cfg.few_threshold,
        }
    }
}
