//! Dependencies both ways, dependents first, and the index against the scan
//! it replaced.

use super::*;
use crate::analysis::recommend::dependencies::{dependencies_for, order_actions_with};
use crate::domain::{DependencyDetail, DependencyDirection};

#[test]
fn dependencies_both_ways_and_dependents_first() {
    let mut app = res(Service::Ec2, "i-app", Some("m5.large"));
    app.relations.push(Relation::new("uses", "db-main"));
    let db = res(Service::Rds, "db-main", Some("db.m5.large"));
    let mut fnx = res(Service::Lambda, "fn-x", None);
    fnx.relations.push(Relation::new("uses", "i-app"));
    let lone = res(Service::S3, "b-lone", None);
    let inventory = vec![db.clone(), app.clone(), fnx.clone(), lone.clone()];
    assert_eq!(dependencies_for(&app, &inventory), vec!["db-main", "fn-x"]);
    assert_eq!(dependencies_for(&db, &inventory), vec!["i-app"]);
    let index = DependencyIndex::new(&inventory);
    assert_eq!(index.dependencies_for(&app), vec!["db-main", "fn-x"]);
    assert_eq!(index.dependencies_for(&db), vec!["i-app"]);
    assert!(index.dependencies_for(&lone).is_empty());
    let rec = |id: &str, svc: Service, s: f64| Recommendation {
        id: Recommendation::stable_id(
            &crate::domain::ResourceKey::new(None, "us-east-1", id),
            Action::Stop,
        ),
        resource_id: id.into(),
        service: svc,
        region: "us-east-1".into(),
        account_id: None,
        owner: None,
        tags: Default::default(),
        current_monthly_cost_usd: None,
        finding: FindingKind::Idle,
        action: Action::Stop,
        target_type: None,
        monthly_savings_usd: Some(s),
        savings_percent: None,
        confidence: 1.0,
        risk: 0,
        reason: "x".into(),
        alternatives: vec![],
        dependencies: vec![],
        dependency_details: Vec::new(),
        utilization_score: None,
        threshold_version: 0,
        created_at: now(),
    };
    let batches = order_actions(
        vec![
            rec("db-main", Service::Rds, 50.0),
            rec("b-lone", Service::S3, 10.0),
            rec("fn-x", Service::Lambda, 1.0),
        ],
        &index,
    );
    assert_eq!(batches.len(), 2);
    let first: Vec<&str> = batches[0].iter().map(|r| r.resource_id.as_str()).collect();
    // fn-x depends (through i-app) on db-main: it goes first, in the same batch.
    assert_eq!(first, vec!["fn-x", "db-main"]);
    assert_eq!(batches[0][1].dependencies, vec!["i-app"]);
    assert_eq!(batches[1][0].resource_id, "b-lone");
}

// ----- the dependency index against the scan it replaced --------------

/// Few ids, so that inventories have duplicates, self-relations,
/// dangling targets and cycles.
fn any_inventory() -> impl Strategy<Value = Vec<Resource>> {
    let resource = (0u8..8, prop::collection::vec(0u8..10, 0..4)).prop_map(|(id, targets)| {
        let mut r = res(Service::Ec2, &format!("r{id}"), None);
        r.relations = targets
            .into_iter()
            .map(|t| Relation::new("uses", format!("r{t}")))
            .collect();
        r
    });
    prop::collection::vec(resource, 0..24)
}

fn rec_for(id: &str, deps: Vec<String>, savings: f64) -> Recommendation {
    Recommendation {
        id: Recommendation::stable_id(
            &crate::domain::ResourceKey::new(None, "us-east-1", id),
            Action::Stop,
        ),
        resource_id: id.into(),
        service: Service::Ec2,
        region: "us-east-1".into(),
        account_id: None,
        owner: None,
        tags: Default::default(),
        current_monthly_cost_usd: None,
        finding: FindingKind::Idle,
        action: Action::Stop,
        target_type: None,
        monthly_savings_usd: Some(savings),
        savings_percent: None,
        confidence: 1.0,
        risk: 0,
        reason: String::new(),
        alternatives: vec![],
        dependencies: deps,
        dependency_details: Vec::new(),
        utilization_score: None,
        threshold_version: 0,
        created_at: now(),
    }
}

/// Recommendations on ids in and out of the inventory, some carrying
/// dependencies already.
fn any_recs() -> impl Strategy<Value = Vec<Recommendation>> {
    let rec = (0u8..10, prop::collection::vec(0u8..10, 0..3), 0.0f64..100.0).prop_map(
        |(id, deps, savings)| {
            let deps = deps.into_iter().map(|d| format!("r{d}")).collect();
            rec_for(&format!("r{id}"), deps, savings)
        },
    );
    prop::collection::vec(rec, 0..10)
}

/// What finalize did before the index: a linear search and a scan per
/// recommendation, then ordering with the same scan.
fn reference_stage(
    mut recs: Vec<Recommendation>,
    inventory: &[Resource],
) -> Vec<Vec<Recommendation>> {
    for rec in &mut recs {
        if let Some(resource) = inventory.iter().find(|r| r.id == rec.resource_id) {
            let mut deps = dependencies_for(resource, inventory);
            deps.retain(|d| d != &rec.resource_id);
            for d in deps {
                if !rec.dependencies.contains(&d) {
                    rec.dependencies.push(d);
                }
            }
        }
    }
    order_actions_with(recs, inventory, |r| dependencies_for(r, inventory))
}

proptest! {
    #[test]
    fn index_matches_the_scan(inventory in any_inventory(), probe in 0u8..10) {
        let index = DependencyIndex::new(&inventory);
        for r in &inventory {
            prop_assert_eq!(index.dependencies_for(r), dependencies_for(r, &inventory));
        }
        // A resource the inventory does not hold (or holds under another entry).
        let outside = res(Service::Rds, &format!("r{probe}"), None);
        prop_assert_eq!(index.dependencies_for(&outside), dependencies_for(&outside, &inventory));
    }

    #[test]
    fn indexed_stage_matches_the_scan(inventory in any_inventory(), recs in any_recs()) {
        let expected = reference_stage(recs.clone(), &inventory);
        let index = DependencyIndex::new(&inventory);
        let mut recs = recs;
        index.link(&mut recs);
        // The scan knew ids only: compare what it computed.
        let ids = |b: Vec<Vec<Recommendation>>| -> Vec<Vec<(String, Vec<String>)>> {
            b.into_iter()
                .map(|g| g.into_iter().map(|r| (r.resource_id, r.dependencies)).collect())
                .collect()
        };
        prop_assert_eq!(ids(order_actions(recs, &index)), ids(expected));
    }
}

fn relation(kind: &str, target: &str) -> Relation {
    serde_json::from_value(serde_json::json!({"kind": kind, "targetId": target})).unwrap()
}

#[test]
fn removing_what_others_depend_on_says_so_and_raises_the_risk() {
    let mut vol = res(Service::Ebs, "vol-1", None);
    vol.relations.push(relation("attached_to", "i-db"));
    let mut sg = res(Service::Rds, "db-1", Some("db.m5.large"));
    // The database's security group admits the instance's: it serves i-db.
    sg.relations.push(relation("admits", "i-db"));
    let inst = res(Service::Ec2, "i-db", Some("m5.large"));
    let inventory = vec![vol, sg, inst];
    let index = DependencyIndex::new(&inventory);
    let mut recs = vec![
        rec_for("i-db", vec![], 50.0),
        rec_for("db-1", vec![], 80.0),
        rec_for("vol-1", vec![], 5.0),
    ];
    let mut rightsize = rec_for("i-db", vec![], 20.0);
    rightsize.action = Action::Rightsize;
    recs.push(rightsize);
    index.link(&mut recs);
    // Stopping the instance: the volume depends on it.
    assert_eq!(recs[0].risk, 1);
    assert!(
        recs[0]
            .reason
            .contains("Depended on by 1: vol-1 (attached_to)"),
        "{}",
        recs[0].reason
    );
    assert_eq!(
        recs[0].dependency_details,
        vec![
            DependencyDetail {
                resource_id: "db-1".into(),
                kind: "admits".into(),
                direction: DependencyDirection::DependsOn,
                evidence: None,
            },
            DependencyDetail {
                resource_id: "vol-1".into(),
                kind: "attached_to".into(),
                direction: DependencyDirection::DependedOnBy,
                evidence: None,
            },
        ]
    );
    // Stopping the database: the instance it admits depends on it.
    assert_eq!(recs[1].risk, 1);
    assert!(
        recs[1].reason.contains("i-db (admits)"),
        "{}",
        recs[1].reason
    );
    // Deleting the volume: it depends on the instance, nothing on it.
    assert_eq!(recs[2].risk, 0);
    assert_eq!(
        recs[2].dependency_details[0].direction,
        DependencyDirection::DependsOn
    );
    // A rightsizing is not a removal: risk unchanged.
    assert_eq!(recs[3].risk, 0);
    assert!(!recs[3].reason.contains("Depended on"));
}
