//! The api function against the emulator, one module per resource area,
//! in one test binary so the split costs no extra link.

#[path = "../common/mod.rs"]
mod common;

mod approvals;
mod audit;
mod inputs;
mod metrics;
mod policies;
mod recommendations;
mod resources;
mod routing;
mod scheduler;
mod thresholds;
