//! The route table: the one place that says what the API serves. The router
//! matches against it, and a test checks it against openapi.yaml both ways.

use shared::domain::Role;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Health,
    ListApprovals,
    GetApproval,
    Approve,
    Reject,
    Execute,
    Preview,
    Rollback,
    Recommendations,
    Savings,
    ListResources,
    GetResource,
    UpsertResources,
    QueryMetrics,
    ResourceMetrics,
    IngestMetrics,
    AuditTrail,
    AuditReport,
    GetThresholds,
    PutThresholds,
    ThresholdHistory,
    SchedulerStatus,
    SchedulerTrigger,
    WebsocketStatus,
    Costs,
    CostForecast,
    GetJob,
    ListPolicies,
    PutPolicy,
    Accounts,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    /// Relative to the `/api` prefix; `{name}` is a path parameter (one segment).
    pub path: &'static str,
    pub op: Op,
    /// The least role allowed; `None` for the unauthenticated health check.
    pub role: Option<Role>,
}

const fn r(method: &'static str, path: &'static str, op: Op, role: Option<Role>) -> Route {
    Route {
        method,
        path,
        op,
        role,
    }
}

const V: Option<Role> = Some(Role::Viewer);
const O: Option<Role> = Some(Role::Operator);
const A: Option<Role> = Some(Role::Approver);
const AD: Option<Role> = Some(Role::Admin);

pub const ROUTES: &[Route] = &[
    r("GET", "/health", Op::Health, None),
    r("GET", "/approval-requests", Op::ListApprovals, V),
    r("GET", "/approval-requests/{id}", Op::GetApproval, V),
    r("POST", "/approval-requests/{id}/approve", Op::Approve, A),
    r("POST", "/approval-requests/{id}/reject", Op::Reject, A),
    r("POST", "/approval-requests/{id}/preview", Op::Preview, A),
    r("POST", "/approval-requests/{id}/execute", Op::Execute, A),
    r("POST", "/approval-requests/{id}/rollback", Op::Rollback, A),
    r("GET", "/recommendations", Op::Recommendations, V),
    r("GET", "/savings", Op::Savings, V),
    r("GET", "/resources", Op::ListResources, V),
    r("POST", "/resources", Op::UpsertResources, O),
    r("GET", "/resources/{id}", Op::GetResource, V),
    r("GET", "/metrics", Op::QueryMetrics, V),
    r("POST", "/metrics", Op::IngestMetrics, O),
    r("GET", "/metrics/{resourceId}", Op::ResourceMetrics, V),
    r("GET", "/audit-trail", Op::AuditTrail, V),
    r("GET", "/audit-trail/report", Op::AuditReport, V),
    r("GET", "/thresholds", Op::GetThresholds, V),
    r("POST", "/thresholds", Op::PutThresholds, AD),
    r("GET", "/thresholds/history", Op::ThresholdHistory, V),
    r("GET", "/scheduler/status", Op::SchedulerStatus, V),
    r("POST", "/scheduler/trigger", Op::SchedulerTrigger, O),
    r("GET", "/websocket/status", Op::WebsocketStatus, V),
    r("GET", "/costs", Op::Costs, V),
    r("GET", "/costs/forecast", Op::CostForecast, V),
    r("GET", "/jobs/{id}", Op::GetJob, V),
    r("GET", "/policies", Op::ListPolicies, AD),
    r("POST", "/policies", Op::PutPolicy, AD),
    r("GET", "/accounts", Op::Accounts, V),
];

/// The outcome of matching a request line against [`ROUTES`].
#[derive(Debug, PartialEq)]
pub enum Matched {
    Route(&'static Route, Vec<String>),
    /// The path exists, with other methods.
    MethodNotAllowed(Vec<&'static str>),
    NotFound,
}

fn segments(path: &str) -> Vec<&str> {
    path.split('/').filter(|s| !s.is_empty()).collect()
}

/// Matches `method` and `path` (with or without the `/api` prefix). Literal
/// segments win over parameters, so `/audit-trail/report` is never an id.
pub fn match_route(method: &str, path: &str) -> Matched {
    let mut segs = segments(path);
    if segs.first() == Some(&"api") {
        segs.remove(0);
    }
    let mut best: Option<(&'static Route, Vec<String>, usize)> = None;
    let mut allowed = Vec::new();
    for route in ROUTES {
        let pattern = segments(route.path);
        if pattern.len() != segs.len() {
            continue;
        }
        let mut params = Vec::new();
        let mut literals = 0;
        let ok = pattern.iter().zip(&segs).all(|(p, s)| {
            if p.starts_with('{') {
                params.push((*s).to_string());
                true
            } else if p == s {
                literals += 1;
                true
            } else {
                false
            }
        });
        if !ok {
            continue;
        }
        if route.method != method {
            allowed.push((route.method, literals));
            continue;
        }
        if best.as_ref().is_none_or(|(_, _, l)| literals > *l) {
            best = Some((route, params, literals));
        }
    }
    match best {
        Some((route, params, literals)) => {
            // A more literal path with other methods means this was not the intended route.
            if allowed.iter().any(|(_, l)| *l > literals) {
                let top = allowed.iter().map(|(_, l)| *l).max().unwrap_or(0);
                return Matched::MethodNotAllowed(
                    allowed
                        .into_iter()
                        .filter(|(_, l)| *l == top)
                        .map(|(m, _)| m)
                        .collect(),
                );
            }
            Matched::Route(route, params)
        }
        None if !allowed.is_empty() => {
            let top = allowed.iter().map(|(_, l)| *l).max().unwrap_or(0);
            Matched::MethodNotAllowed(
                allowed
                    .into_iter()
                    .filter(|(_, l)| *l == top)
                    .map(|(m, _)| m)
                    .collect(),
            )
        }
        None => Matched::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_win_and_prefix_is_optional() {
        match match_route("GET", "/api/audit-trail/report") {
            Matched::Route(r, p) => {
                assert_eq!(r.op, Op::AuditReport);
                assert!(p.is_empty());
            }
            other => panic!("{other:?}"),
        }
        match match_route("GET", "/approval-requests/abc") {
            Matched::Route(r, p) => {
                assert_eq!(r.op, Op::GetApproval);
                assert_eq!(p, vec!["abc".to_string()]);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            match_route("DELETE", "/api/resources"),
            Matched::MethodNotAllowed(vec!["GET", "POST"])
        );
        assert_eq!(match_route("GET", "/api/nope"), Matched::NotFound);
        assert_eq!(
            match_route("POST", "/api/audit-trail/report"),
            Matched::MethodNotAllowed(vec!["GET"])
        );
    }
}
