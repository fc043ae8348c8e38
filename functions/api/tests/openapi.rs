//! openapi.yaml and the router agree: every route the router serves is
//! documented, every documented operation is served, and the operations
//! without authentication are exactly the routes without a role.

use api::ROUTES;
use std::collections::BTreeSet;

fn document() -> serde_yaml::Value {
    let path = finops_local::repo_root().join("openapi.yaml");
    serde_yaml::from_str(&std::fs::read_to_string(path).expect("openapi.yaml exists"))
        .expect("openapi.yaml parses")
}

#[test]
fn every_route_is_documented_and_every_documented_route_is_served() {
    let doc = document();
    assert_eq!(doc["openapi"].as_str(), Some("3.1.0"));
    assert_eq!(doc["servers"][0]["url"].as_str(), Some("/api"));
    let mut documented = BTreeSet::new();
    let mut public = BTreeSet::new();
    for (path, item) in doc["paths"].as_mapping().expect("paths") {
        let path = path.as_str().unwrap().to_string();
        for (method, op) in item.as_mapping().unwrap() {
            let method = method.as_str().unwrap().to_uppercase();
            if op["security"].as_sequence().is_some_and(|s| s.is_empty()) {
                public.insert((method.clone(), path.clone()));
            }
            documented.insert((method, path.clone()));
        }
    }
    let served: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect();
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty(),
        "served but not in openapi.yaml: {undocumented:?}"
    );
    assert!(
        unserved.is_empty(),
        "in openapi.yaml but not served: {unserved:?}"
    );
    let open: BTreeSet<(String, String)> = ROUTES
        .iter()
        .filter(|r| r.role.is_none())
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect();
    assert_eq!(open, public, "operations without authentication");
}
