//! What is left of a plan, against the store: counts per stage and the cost of the rest.

use serde::Serialize;

use crate::plan::{classify, CostEstimate, NodeState, Plan, StageCounts};
use crate::store::{Store, StoreError};

#[derive(Debug, Serialize)]
pub struct PlanReport {
    pub manifest: String,
    pub profile: String,
    pub runs: usize,
    pub stages: Vec<StageCounts>,
    pub cost: CostEstimate,
    pub unsupported: Option<String>,
}

/// Counts and cost of a plan against the store's statuses (`None`: no store yet, so nothing
/// has run).
pub fn plan_report(plan: &Plan, store: Option<&Store>) -> Result<(PlanReport, Vec<NodeState>), StoreError> {
    let ids: Vec<&str> = plan.nodes.iter().map(|n| n.id.as_str()).collect();
    let statuses = match store {
        Some(store) => store.statuses(&ids)?,
        None => Default::default(),
    };
    let states = classify(plan, &statuses);
    let mut cost = CostEstimate::default();
    for (node, state) in plan.nodes.iter().zip(&states) {
        if matches!(state, NodeState::ToRun | NodeState::Running) {
            cost.add(&node.config);
        }
    }
    let report = PlanReport {
        manifest: plan.manifest.clone(),
        profile: plan.profile.clone(),
        runs: plan.nodes.len(),
        stages: StageCounts::per_stage(plan, &states),
        cost,
        unsupported: plan.unsupported.clone(),
    };
    Ok((report, states))
}
