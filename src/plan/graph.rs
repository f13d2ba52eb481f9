//! Where each run of a plan stands, given the statuses in the store.

use std::collections::HashMap;

use serde::Serialize;

use super::Plan;
use crate::result::RunStatus;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeState {
    Done,
    /// Finished as diverged: a result, but no checkpoint to build on.
    Diverged,
    Failed,
    Running,
    /// Will run (new, pending or interrupted), possibly after its parents.
    ToRun,
    /// An ancestor failed or diverged.
    Blocked,
}

impl NodeState {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Done => "done",
            NodeState::Diverged => "diverged",
            NodeState::Failed => "failed",
            NodeState::Running => "running",
            NodeState::ToRun => "to run",
            NodeState::Blocked => "blocked",
        }
    }
}

/// States in plan order; parents come before children in `plan.nodes`, so one pass suffices.
pub fn classify(plan: &Plan, statuses: &HashMap<String, RunStatus>) -> Vec<NodeState> {
    let mut states: Vec<NodeState> = Vec::with_capacity(plan.nodes.len());
    for node in &plan.nodes {
        let parent_bad = node.parents.iter().any(|&p| {
            matches!(
                states[p],
                NodeState::Failed | NodeState::Diverged | NodeState::Blocked
            )
        });
        let own = match statuses.get(&node.id) {
            Some(RunStatus::Done) => NodeState::Done,
            Some(RunStatus::Diverged) => NodeState::Diverged,
            Some(RunStatus::Failed) => NodeState::Failed,
            Some(RunStatus::Running) => NodeState::Running,
            Some(RunStatus::Pending | RunStatus::Interrupted) | None => NodeState::ToRun,
        };
        let state = if parent_bad && own == NodeState::ToRun {
            NodeState::Blocked
        } else {
            own
        };
        states.push(state);
    }
    states
}

/// Counts per stage, for `repro plan` and `repro status`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StageCounts {
    pub stage: String,
    pub done: usize,
    pub diverged: usize,
    pub failed: usize,
    pub running: usize,
    pub to_run: usize,
    pub blocked: usize,
}

impl StageCounts {
    pub fn add(&mut self, state: NodeState) {
        match state {
            NodeState::Done => self.done += 1,
            NodeState::Diverged => self.diverged += 1,
            NodeState::Failed => self.failed += 1,
            NodeState::Running => self.running += 1,
            NodeState::ToRun => self.to_run += 1,
            NodeState::Blocked => self.blocked += 1,
        }
    }

    /// In stage dependency order.
    pub fn per_stage(plan: &Plan, states: &[NodeState]) -> Vec<StageCounts> {
        let mut counts: Vec<StageCounts> = plan
            .stages
            .iter()
            .map(|s| StageCounts {
                stage: s.clone(),
                ..Default::default()
            })
            .collect();
        let index: HashMap<&str, usize> = plan
            .stages
            .iter()
            .enumerate()
            .map(|(i, s)| (s.as_str(), i))
            .collect();
        for (node, state) in plan.nodes.iter().zip(states) {
            counts[index[node.stage.as_str()]].add(*state);
        }
        counts
    }
}
