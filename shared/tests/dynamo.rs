//! The DynamoDB adapters against the emulator, over HTTP, with tables built
//! from template.yaml. Each test gets its own tables.

use chrono::{DateTime, Duration, Utc};
use finops_local::LocalStack;
use serde_json::json;
use shared::approvals::{self, DecisionInput};
use shared::domain::*;
use shared::dynamo::*;
use shared::store::*;
use shared::Error;
use std::collections::BTreeMap;
use std::sync::Arc;

fn codec() -> PageTokenCodec {
    PageTokenCodec::new("test-secret")
}

fn ddb(stack: &LocalStack) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&stack.config)
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn recommendation(resource: &str, action: Action) -> Recommendation {
    Recommendation {
        id: Recommendation::stable_id(&ResourceKey::new(None, "us-east-1", resource), action),
        resource_id: resource.into(),
        service: Service::Ec2,
        region: "us-east-1".into(),
        account_id: None,
        owner: None,
        tags: Default::default(),
        current_monthly_cost_usd: None,
        finding: FindingKind::Idle,
        action,
        target_type: Some("t3.small".into()),
        monthly_savings_usd: Some(30.37),
        savings_percent: Some(50.0),
        confidence: 0.87,
        risk: 1,
        reason: "CPU daily average <= 10% on 9 of the last 14 days".into(),
        alternatives: vec![Alternative {
            action: Action::Rightsize,
            target_type: Some("t3.micro".into()),
            monthly_savings_usd: None,
            risk: 2,
            description: "no price known for t3.micro".into(),
        }],
        dependencies: vec!["db-1".into()],
        dependency_details: Vec::new(),
        utilization_score: Some(7),
        threshold_version: 3,
        created_at: t("2026-11-23T10:00:00.123Z"),
    }
}

fn approvals_store(stack: &LocalStack) -> DynamoApprovals {
    DynamoApprovals::new(
        ddb(stack),
        stack.table("ApprovalsTable"),
        stack.table("AuditTable"),
        codec(),
    )
}

fn audit_store(stack: &LocalStack) -> DynamoAudit {
    DynamoAudit::new(ddb(stack), stack.table("AuditTable"), codec())
}

fn entry(id: &str, entity: &str, actor: &str, action: &str, at: DateTime<Utc>) -> AuditEntry {
    AuditEntry {
        id: id.into(),
        entity_type: "approval_request".into(),
        entity_id: entity.into(),
        action: action.into(),
        actor: actor.into(),
        at,
        outcome: Some("approved".into()),
        reason: Some("looks right".into()),
        pre_state: Some(json!({"status": "pending", "version": 1})),
        post_state: Some(
            json!({"status": "approved", "version": 2, "nested": {"a": [1, 2.5, "x"]}}),
        ),
        correlation_id: Some("corr-1".into()),
    }
}

#[tokio::test]
async fn every_stored_type_round_trips() {
    let stack = LocalStack::isolated().await;
    let now = Utc::now();

    // Jobs
    let jobs = DynamoJobs::new(ddb(&stack), stack.table("JobsTable"));
    let job = Job::new(
        "job-1",
        JobKind::OptimizationCycle,
        "alice",
        json!({"services": ["ec2"], "dryRun": true}),
        now,
    );
    assert!(jobs.create(&job).await.unwrap());
    assert_eq!(jobs.get("job-1", now).await.unwrap().unwrap(), job);

    // Approval requests and decisions
    let store = approvals_store(&stack);
    let (request, outcome) = approvals::open(
        &store,
        recommendation("i-1", Action::Stop),
        "cycle",
        Some("c1".into()),
        Duration::days(7),
        now,
    )
    .await
    .unwrap();
    assert_eq!(outcome, CreateOutcome::Created);
    assert_eq!(store.get(&request.id).await.unwrap().unwrap(), request);
    let (approved, decision) = approvals::decide(
        &store,
        &request.id,
        DecisionInput::new(ApprovalEvent::Approve, "bob").reason("ok"),
        now,
    )
    .await
    .unwrap();
    assert_eq!(store.get(&request.id).await.unwrap().unwrap(), approved);
    assert_eq!(store.decisions(&request.id).await.unwrap(), vec![decision]);

    // Audit entries
    let audit = audit_store(&stack);
    let e = entry("a-1", "req-9", "carol", "approval.approve", now);
    audit.append(&e).await.unwrap();
    let page = audit
        .query(
            &AuditQuery {
                entity_id: Some("req-9".into()),
                ..Default::default()
            },
            None,
            None,
            now,
        )
        .await
        .unwrap();
    assert_eq!(page.items, vec![e]);

    // Metrics
    let metrics = DynamoMetrics::new(ddb(&stack), stack.table("MetricsTable"), codec());
    let sample = MetricSample {
        resource_id: "i-1".into(),
        service: Service::Ec2,
        metric: "CPUUtilization".into(),
        timestamp: t("2026-11-23T09:00:00Z"),
        value: 12.75,
        unit: Some("Percent".into()),
    };
    metrics
        .put(std::slice::from_ref(&sample), now)
        .await
        .unwrap();
    let got = metrics
        .query(
            &MetricQuery {
                resource_id: "i-1".into(),
                metric: "CPUUtilization".into(),
                from: t("2026-11-23T00:00:00Z"),
                to: t("2026-11-24T00:00:00Z"),
            },
            None,
            None,
            t("2026-11-23T10:00:00Z"),
        )
        .await
        .unwrap();
    assert_eq!(got.items, vec![sample]);

    // Thresholds
    let thresholds = DynamoThresholds::new(ddb(&stack), stack.table("ThresholdsTable"), codec());
    let set = ThresholdSet {
        version: 1,
        created_at: now,
        created_by: "admin".into(),
        note: Some("first".into()),
        rules: vec![ThresholdRule {
            id: "ec2.low_utilization".into(),
            service: Service::Ec2,
            finding: FindingKind::Underutilized,
            action: Action::Stop,
            description: "TA low utilisation".into(),
            conditions: vec![Condition {
                metric: "CPUUtilization".into(),
                statistic: "Average".into(),
                operator: Operator::LessThan,
                value: 10.0,
                upper: None,
            }],
            aggregation: Aggregation::Daily,
            lookback_days: 14,
            min_days: Some(4),
            of_last_days: Some(14),
            min_coverage: 0.1,
            headroom_percent: None,
        }],
    };
    thresholds.put_version(&set).await.unwrap();
    assert_eq!(thresholds.latest().await.unwrap().unwrap(), set);

    // Lease and cycle runs
    let cycles = DynamoCycles::new(ddb(&stack), stack.table("CyclesTable"));
    assert!(cycles
        .acquire("cycle", "w1", Duration::minutes(5), now)
        .await
        .unwrap());
    let lease = cycles.current("cycle", now).await.unwrap().unwrap();
    assert_eq!(
        (lease.owner.as_str(), lease.expires_at),
        ("w1", now + Duration::minutes(5))
    );
    let run = CycleRun {
        run_id: "run-1".into(),
        job_id: "job-1".into(),
        trigger: Trigger::Manual,
        status: RunStatus::Partial,
        started_at: now,
        finished_at: Some(now + Duration::seconds(3)),
        stages: vec![StageOutcome {
            stage: Stage::Analyse,
            ok: false,
            processed: 10,
            failed: 1,
            duration_ms: 42,
            error: Some("x".into()),
        }],
        resources_analysed: 10,
        findings: 4,
        recommendations: 3,
        monthly_savings_usd: 120.5,
        threshold_version: Some(1),
        error: None,
        dry_run: false,
    };
    cycles.put_run(&run).await.unwrap();
    assert_eq!(cycles.get_run("run-1").await.unwrap().unwrap(), run);
    assert_eq!(cycles.recent_runs(100).await.unwrap(), vec![run]);

    // Connections and subscriptions
    let conns = DynamoConnections::new(ddb(&stack), stack.table("ConnectionsTable"), codec());
    let conn = Connection {
        connection_id: "c-1".into(),
        user_id: "alice".into(),
        roles: vec![Role::Viewer, Role::Approver],
        connected_at: now,
        expires_at: now + Duration::hours(2),
    };
    conns.put(&conn).await.unwrap();
    assert_eq!(conns.get("c-1", now).await.unwrap().unwrap(), conn);
    let topics = vec![Topic::Approvals, Topic::Resource("i-1".into())];
    conns.subscribe("c-1", &topics, now).await.unwrap();
    assert_eq!(conns.topics_of("c-1", now).await.unwrap(), topics);
    assert_eq!(
        conns
            .subscribers(&Topic::Resource("i-1".into()), None, None, now)
            .await
            .unwrap()
            .items,
        vec!["c-1".to_string()]
    );
    conns.remove("c-1").await.unwrap();
    assert!(conns.get("c-1", now).await.unwrap().is_none());
    assert!(conns
        .subscribers(&Topic::Approvals, None, None, now)
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(matches!(
        conns.subscribe("c-1", &topics, now).await,
        Err(Error::NotFound { .. })
    ));

    // Inventory
    let inventory = DynamoInventory::new(ddb(&stack), stack.table("InventoryTable"), codec());
    let mut resource = Resource::new(Service::Rds, "db-1", "us-east-1");
    resource.resource_type = Some("db.m5.large".into());
    resource.memory_mb = Some(8192);
    resource.monthly_cost_usd = Some(124.1);
    resource.tags = BTreeMap::from([("team".to_string(), "core".to_string())]);
    resource.relations = vec![Relation::new("used_by", "i-1")];
    resource.attributes = BTreeMap::from([("multiAz".to_string(), json!(true))]);
    inventory
        .upsert(std::slice::from_ref(&resource))
        .await
        .unwrap();
    // Pushed fields are overrides, and say so.
    let resource = Resource {
        overridden: [
            "resourceType",
            "memoryMb",
            "monthlyCostUsd",
            "tags",
            "relations",
            "attributes",
        ]
        .map(String::from)
        .to_vec(),
        ..resource
    };
    assert_eq!(
        inventory.get(&resource.key()).await.unwrap().unwrap(),
        resource
    );
    let by_tag = inventory
        .list(
            &InventoryFilter {
                service: Some(Service::Rds),
                tag: Some("team=core".into()),
                ..InventoryFilter::default()
            },
            None,
            None,
        )
        .await
        .unwrap();
    assert_eq!(by_tag.items, vec![resource]);
}

/// One name in two accounts and two regions: three resources, each kept,
/// read and listed on its own, and each with its own open request.
#[tokio::test]
async fn one_name_in_two_accounts_and_regions_is_three_resources() {
    let stack = LocalStack::isolated().await;
    let inventory = DynamoInventory::new(ddb(&stack), stack.table("InventoryTable"), codec());
    let scopes = [
        ("111111111111", "us-east-1", "db.m5.large"),
        ("222222222222", "us-east-1", "db.r5.large"),
        ("111111111111", "eu-west-1", "db.t3.medium"),
    ];
    let found: Vec<Resource> = scopes
        .iter()
        .map(|(account, region, class)| {
            let mut r = Resource::new(Service::Rds, "orders", *region);
            r.account_id = Some(account.to_string());
            r.resource_type = Some(class.to_string());
            r.discovered_by = Some("rds:DescribeDBInstances".into());
            r
        })
        .collect();
    assert_eq!(inventory.record_discovered(&found).await.unwrap(), 3);
    for r in &found {
        assert_eq!(
            inventory.get(&r.key()).await.unwrap().as_ref(),
            Some(r),
            "{}",
            r.key()
        );
    }
    assert_eq!(inventory.find("orders").await.unwrap().len(), 3);
    let one = inventory
        .in_scope(&Scope::new(Some("222222222222"), "us-east-1"))
        .await
        .unwrap();
    assert_eq!(one, vec![found[1].clone()]);
    // Filters: account and region read one partition; either alone filters.
    let listed = |account: Option<&str>, region: Option<&str>| {
        let inventory = &inventory;
        let filter = InventoryFilter {
            account_id: account.map(str::to_string),
            region: region.map(str::to_string),
            ..InventoryFilter::default()
        };
        async move {
            let mut types: Vec<String> = inventory
                .list(&filter, None, None)
                .await
                .unwrap()
                .items
                .into_iter()
                .filter_map(|r| r.resource_type)
                .collect();
            types.sort();
            types
        }
    };
    assert_eq!(
        listed(Some("111111111111"), Some("eu-west-1")).await,
        ["db.t3.medium"]
    );
    assert_eq!(
        listed(Some("111111111111"), None).await,
        ["db.m5.large", "db.t3.medium"]
    );
    assert_eq!(
        listed(None, Some("us-east-1")).await,
        ["db.m5.large", "db.r5.large"]
    );
    // An override of one leaves the others as discovered.
    let mut push = found[0].clone();
    push.discovered_by = None;
    push.resource_type = None;
    push.monthly_cost_usd = Some(99.0);
    inventory.upsert(&[push]).await.unwrap();
    let costs: Vec<Option<f64>> = {
        let mut all = inventory.find("orders").await.unwrap();
        all.sort_by_key(Resource::key);
        all.into_iter().map(|r| r.monthly_cost_usd).collect()
    };
    assert_eq!(costs, [None, Some(99.0), None]);

    // Each has its own open request for the same action.
    let store = approvals_store(&stack);
    for r in &found {
        let mut rec = recommendation("orders", Action::Stop);
        rec.account_id = r.account_id.clone();
        rec.region = r.region.clone();
        rec.id = Recommendation::stable_id(&rec.key(), rec.action);
        let (_, outcome) =
            approvals::open(&store, rec, "cycle", None, Duration::days(7), Utc::now())
                .await
                .unwrap();
        assert_eq!(outcome, CreateOutcome::Created, "{}", r.key());
    }
}

#[tokio::test]
async fn overrides_win_field_by_field_and_survive_rediscovery() {
    let stack = LocalStack::isolated().await;
    let inventory = DynamoInventory::new(ddb(&stack), stack.table("InventoryTable"), codec());
    let at = Utc::now();
    let discovered = |ty: &str, team: &str| {
        let mut r = Resource::new(Service::Ec2, "i-ov", "eu-west-1");
        r.account_id = Some("123456789012".into());
        r.resource_type = Some(ty.into());
        r.tags = BTreeMap::from([
            ("team".to_string(), team.to_string()),
            ("env".to_string(), "prod".to_string()),
        ]);
        r.relations = vec![Relation::new("attached_to", "vol-1").with_evidence("DescribeVolumes")];
        r.attributes = BTreeMap::from([("state".to_string(), json!("running"))]);
        r.discovered_at = Some(at);
        r.discovered_by = Some("ec2:DescribeInstances".into());
        r
    };
    inventory
        .record_discovered(&[discovered("m5.xlarge", "payments")])
        .await
        .unwrap();
    // A person says who owns it and what it costs; the type stays discovered.
    let key = ResourceKey::new(Some("123456789012"), "eu-west-1", "i-ov");
    let mut push = Resource::new(Service::Ec2, "i-ov", "eu-west-1");
    push.account_id = Some("123456789012".into());
    push.monthly_cost_usd = Some(140.0);
    push.tags = BTreeMap::from([("owner".to_string(), "ana".to_string())]);
    push.relations = vec![Relation::new("uses", "orders-db")];
    inventory.upsert(&[push]).await.unwrap();
    // Rediscovery: the type changed, the team tag too; the override stays.
    inventory
        .record_discovered(&[discovered("m5.large", "search")])
        .await
        .unwrap();
    let r = inventory.get(&key).await.unwrap().unwrap();
    assert_eq!(r.resource_type.as_deref(), Some("m5.large"));
    assert_eq!(r.monthly_cost_usd, Some(140.0));
    assert_eq!(r.tags.get("owner").map(String::as_str), Some("ana"));
    assert_eq!(r.tags.get("team").map(String::as_str), Some("search"));
    assert_eq!(r.tags.get("env").map(String::as_str), Some("prod"));
    assert_eq!(r.account_id.as_deref(), Some("123456789012"));
    assert_eq!(r.discovered_by.as_deref(), Some("ec2:DescribeInstances"));
    let targets: Vec<&str> = r.relations.iter().map(|x| x.target_id.as_str()).collect();
    assert_eq!(targets, ["vol-1", "orders-db"]);
    assert_eq!(r.attributes.get("state"), Some(&json!("running")));
    assert_eq!(r.overridden, ["monthlyCostUsd", "tags", "relations"]);
    // A second override of another field keeps the first.
    let mut push = Resource::new(Service::Ec2, "i-ov", "eu-west-1");
    push.account_id = Some("123456789012".into());
    push.resource_type = Some("t3.large".into());
    inventory.upsert(&[push]).await.unwrap();
    let r = inventory.get(&key).await.unwrap().unwrap();
    assert_eq!(r.resource_type.as_deref(), Some("t3.large"));
    assert_eq!(r.monthly_cost_usd, Some(140.0));
    // The tag filter sees overridden tags as well as discovered ones.
    for tag in ["owner=ana", "team=search"] {
        let page = inventory
            .list(
                &InventoryFilter {
                    service: Some(Service::Ec2),
                    tag: Some(tag.into()),
                    ..InventoryFilter::default()
                },
                None,
                None,
            )
            .await
            .unwrap();
        assert_eq!(page.items.len(), 1, "{tag}");
    }
}

#[tokio::test]
async fn twenty_racing_approvers_one_wins() {
    let stack = LocalStack::isolated().await;
    let store = Arc::new(approvals_store(&stack));
    let now = Utc::now();
    let (request, _) = approvals::open(
        store.as_ref(),
        recommendation("i-race", Action::Stop),
        "cycle",
        None,
        Duration::days(7),
        now,
    )
    .await
    .unwrap();

    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            let id = request.id.clone();
            tokio::spawn(async move {
                let event = if i % 2 == 0 {
                    ApprovalEvent::Approve
                } else {
                    ApprovalEvent::Reject
                };
                approvals::decide(
                    store.as_ref(),
                    &id,
                    DecisionInput::new(event, format!("approver-{i}")).reason("why"),
                    Utc::now(),
                )
                .await
            })
        })
        .collect();
    let mut ok = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => ok += 1,
            // A loser either lost the conditional write, or read the request
            // after the winner and found the transition illegal.
            Err(Error::Conflict(_)) | Err(Error::IllegalTransition(_)) => {}
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(ok, 1);
    let decisions = store.decisions(&request.id).await.unwrap();
    assert_eq!(decisions.len(), 1);
    let audit = audit_store(&stack)
        .query(
            &AuditQuery {
                entity_id: Some(request.id.clone()),
                ..Default::default()
            },
            None,
            None,
            Utc::now(),
        )
        .await
        .unwrap();
    // One entry for the creation, one for the single decision.
    let decided: Vec<_> = audit
        .items
        .iter()
        .filter(|e| e.action != "approval.requested")
        .collect();
    assert_eq!(decided.len(), 1);
    assert_eq!(decided[0].actor, decisions[0].actor);
    let current = store.get(&request.id).await.unwrap().unwrap();
    assert_eq!(current.version, 2);
    assert_eq!(current.status, decisions[0].to);
}

#[tokio::test]
async fn the_same_recommendation_is_not_requested_twice_while_open() {
    let stack = LocalStack::isolated().await;
    let store = approvals_store(&stack);
    let now = Utc::now();
    let (first, _) = approvals::open(
        &store,
        recommendation("i-2", Action::Stop),
        "cycle",
        Some("c1".into()),
        Duration::days(7),
        now,
    )
    .await
    .unwrap();
    let (_, again) = approvals::open(
        &store,
        recommendation("i-2", Action::Stop),
        "cycle",
        Some("c2".into()),
        Duration::days(7),
        now,
    )
    .await
    .unwrap();
    assert_eq!(
        again,
        CreateOutcome::AlreadyOpen {
            existing_id: first.id.clone()
        }
    );
    // A different action on the same resource is a different request.
    let (_, other) = approvals::open(
        &store,
        recommendation("i-2", Action::Rightsize),
        "cycle",
        Some("c2".into()),
        Duration::days(7),
        now,
    )
    .await
    .unwrap();
    assert_eq!(other, CreateOutcome::Created);
    // Once rejected, the resource may be asked about again.
    approvals::decide(
        &store,
        &first.id,
        DecisionInput::new(ApprovalEvent::Reject, "bob").reason("not now"),
        now,
    )
    .await
    .unwrap();
    let (_, after) = approvals::open(
        &store,
        recommendation("i-2", Action::Stop),
        "cycle",
        Some("c3".into()),
        Duration::days(7),
        now,
    )
    .await
    .unwrap();
    assert_eq!(after, CreateOutcome::Created);
    // An illegal transition is refused and changes nothing.
    let before = store.get(&first.id).await.unwrap().unwrap();
    let err = approvals::decide(
        &store,
        &first.id,
        DecisionInput::new(ApprovalEvent::Approve, "bob"),
        now,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::IllegalTransition(_)));
    assert_eq!(store.get(&first.id).await.unwrap().unwrap(), before);
}

#[tokio::test]
async fn an_audit_entry_is_written_once_and_never_changes() {
    let stack = LocalStack::isolated().await;
    let audit = audit_store(&stack);
    let now = Utc::now();
    let first = entry("a-1", "req-1", "alice", "approval.approve", now);
    audit.append(&first).await.unwrap();
    let mut second = first.clone();
    second.actor = "mallory".into();
    second.reason = Some("rewritten".into());
    assert!(matches!(
        audit.append(&second).await,
        Err(Error::AlreadyExists { .. })
    ));
    let stored = audit
        .query(
            &AuditQuery {
                entity_id: Some("req-1".into()),
                ..Default::default()
            },
            None,
            None,
            now,
        )
        .await
        .unwrap();
    assert_eq!(stored.items, vec![first]);
}

#[tokio::test]
async fn audit_is_queryable_by_entity_actor_action_and_time() {
    let stack = LocalStack::isolated().await;
    let audit = audit_store(&stack);
    let now = t("2026-11-23T12:00:00Z");
    let entries = [
        entry(
            "1",
            "req-1",
            "alice",
            "approval.approve",
            t("2026-11-20T10:00:00Z"),
        ),
        entry(
            "2",
            "req-1",
            "bob",
            "approval.execute_succeeded",
            t("2026-11-21T10:00:00Z"),
        ),
        entry(
            "3",
            "req-2",
            "alice",
            "approval.reject",
            t("2026-11-22T10:00:00Z"),
        ),
        entry(
            "4",
            "req-3",
            "carol",
            "approval.approve",
            t("2026-11-23T10:00:00Z"),
        ),
    ];
    for e in &entries {
        audit.append(e).await.unwrap();
    }
    let ids = |p: Page<AuditEntry>| p.items.into_iter().map(|e| e.id).collect::<Vec<_>>();
    let q = |f: fn(&mut AuditQuery)| {
        let mut q = AuditQuery::default();
        f(&mut q);
        q
    };
    assert_eq!(
        ids(audit
            .query(&q(|q| q.entity_id = Some("req-1".into())), None, None, now)
            .await
            .unwrap()),
        ["2", "1"]
    );
    assert_eq!(
        ids(audit
            .query(&q(|q| q.actor = Some("alice".into())), None, None, now)
            .await
            .unwrap()),
        ["3", "1"]
    );
    assert_eq!(
        ids(audit
            .query(
                &q(|q| q.action = Some("approval.approve".into())),
                None,
                None,
                now
            )
            .await
            .unwrap()),
        ["4", "1"]
    );
    let period = AuditQuery {
        from: Some(t("2026-11-21T00:00:00Z")),
        to: Some(t("2026-11-22T23:00:00Z")),
        ..Default::default()
    };
    assert_eq!(
        ids(audit.query(&period, None, None, now).await.unwrap()),
        ["3", "2"]
    );
    // Time-only listing across days, one item per page, follows tokens to the end.
    let mut token = None;
    let mut seen = Vec::new();
    loop {
        let page = audit
            .query(&AuditQuery::default(), Some(1), token.as_deref(), now)
            .await
            .unwrap();
        seen.extend(page.items.into_iter().map(|e| e.id));
        token = page.next_token;
        if token.is_none() {
            break;
        }
    }
    assert_eq!(seen, ["4", "3", "2", "1"]);
}

#[tokio::test]
async fn two_contenders_for_the_lease() {
    let stack = LocalStack::isolated().await;
    let cycles = DynamoCycles::new(ddb(&stack), stack.table("CyclesTable"));
    let now = Utc::now();
    let ttl = Duration::minutes(10);
    let (a, b) = tokio::join!(
        cycles.acquire("cycle", "A", ttl, now),
        cycles.acquire("cycle", "B", ttl, now)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(a ^ b, "exactly one contender holds the lease");
    let (holder, other) = if a { ("A", "B") } else { ("B", "A") };

    assert!(!cycles
        .acquire("cycle", other, ttl, now + Duration::minutes(5))
        .await
        .unwrap());
    assert!(matches!(
        cycles.renew("cycle", other, ttl, now).await,
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        cycles.release("cycle", other).await,
        Err(Error::Conflict(_))
    ));
    cycles
        .renew("cycle", holder, ttl, now + Duration::minutes(5))
        .await
        .unwrap();
    // Renewed until +15 min: still held at +12.
    assert!(!cycles
        .acquire("cycle", other, ttl, now + Duration::minutes(12))
        .await
        .unwrap());
    // Past expiry the other takes it.
    assert!(cycles
        .acquire("cycle", other, ttl, now + Duration::minutes(16))
        .await
        .unwrap());
    assert_eq!(
        cycles
            .current("cycle", now + Duration::minutes(16))
            .await
            .unwrap()
            .unwrap()
            .owner,
        other
    );
    // ... and once released, anyone may.
    cycles.release("cycle", other).await.unwrap();
    assert!(cycles
        .current("cycle", now + Duration::minutes(16))
        .await
        .unwrap()
        .is_none());
    assert!(cycles
        .acquire("cycle", holder, ttl, now + Duration::minutes(16))
        .await
        .unwrap());
}

#[tokio::test]
async fn listing_pages_return_every_item_once_and_refuse_tampered_tokens() {
    let stack = LocalStack::isolated().await;
    let store = approvals_store(&stack);
    let now = Utc::now();
    let mut expected = Vec::new();
    for i in 0..23 {
        let (req, _) = approvals::open(
            &store,
            recommendation(&format!("i-{i:02}"), Action::Stop),
            "cycle",
            None,
            Duration::days(7),
            now + Duration::seconds(i),
        )
        .await
        .unwrap();
        expected.push(req.id);
    }
    let filter = ApprovalFilter {
        status: Some(ApprovalStatus::Pending),
        ..Default::default()
    };
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = store
            .list(&filter, Some(5), token.as_deref())
            .await
            .unwrap();
        pages += 1;
        seen.extend(page.items.into_iter().map(|r| r.id));
        match page.next_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    assert!(pages >= 5);
    let mut sorted_seen = seen.clone();
    sorted_seen.sort();
    sorted_seen.dedup();
    assert_eq!(sorted_seen.len(), seen.len(), "no item twice");
    expected.sort();
    assert_eq!(sorted_seen, expected, "every item once");

    let page = store.list(&filter, Some(5), None).await.unwrap();
    let token = page.next_token.unwrap();
    let mut tampered = token.clone().into_bytes();
    tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert!(matches!(
        store.list(&filter, Some(5), Some(&tampered)).await,
        Err(Error::Validation(_))
    ));
    // A token of one listing is no good for another.
    let other = ApprovalFilter {
        status: Some(ApprovalStatus::Approved),
        ..Default::default()
    };
    assert!(matches!(
        store.list(&other, Some(5), Some(&token)).await,
        Err(Error::Validation(_))
    ));
    assert!(matches!(
        store.list(&filter, Some(5), Some("not-a-token")).await,
        Err(Error::Validation(_))
    ));
}

#[tokio::test]
async fn items_past_their_ttl_are_not_returned() {
    let stack = LocalStack::isolated().await;
    let now = t("2026-11-23T12:00:00Z");

    let conns = DynamoConnections::new(ddb(&stack), stack.table("ConnectionsTable"), codec());
    let stale = Connection {
        connection_id: "old".into(),
        user_id: "u".into(),
        roles: vec![Role::Viewer],
        connected_at: now - Duration::hours(3),
        expires_at: now - Duration::hours(1),
    };
    let fresh = Connection {
        connection_id: "new".into(),
        expires_at: now + Duration::hours(1),
        ..stale.clone()
    };
    conns.put(&stale).await.unwrap();
    conns.put(&fresh).await.unwrap();
    // Subscribe while each was alive; the stale one's subscription expires with it.
    conns
        .subscribe("old", &[Topic::Jobs], now - Duration::hours(2))
        .await
        .unwrap();
    conns.subscribe("new", &[Topic::Jobs], now).await.unwrap();
    assert!(conns.get("old", now).await.unwrap().is_none());
    assert!(conns.get("new", now).await.unwrap().is_some());
    assert_eq!(
        conns
            .subscribers(&Topic::Jobs, None, None, now)
            .await
            .unwrap()
            .items,
        vec!["new".to_string()]
    );

    let metrics = DynamoMetrics::new(ddb(&stack), stack.table("MetricsTable"), codec())
        .with_retention(Duration::days(30));
    let sample = |ts: &str| MetricSample {
        resource_id: "i-1".into(),
        service: Service::Ec2,
        metric: "CPUUtilization".into(),
        timestamp: t(ts),
        value: 1.0,
        unit: None,
    };
    metrics
        .put(
            &[
                sample("2026-10-01T00:00:00Z"),
                sample("2026-11-20T00:00:00Z"),
            ],
            now,
        )
        .await
        .unwrap();
    let got = metrics
        .query(
            &MetricQuery {
                resource_id: "i-1".into(),
                metric: "CPUUtilization".into(),
                from: t("2026-09-01T00:00:00Z"),
                to: now,
            },
            None,
            None,
            now,
        )
        .await
        .unwrap();
    assert_eq!(got.items, vec![sample("2026-11-20T00:00:00Z")]);

    let jobs = DynamoJobs::new(ddb(&stack), stack.table("JobsTable"));
    let old = Job::new(
        "old-job",
        JobKind::CostAnalysis,
        "u",
        json!({}),
        now - Duration::days(31),
    );
    jobs.create(&old).await.unwrap();
    assert!(jobs.get("old-job", now).await.unwrap().is_none());
}

#[tokio::test]
async fn job_transitions_are_conditional() {
    let stack = LocalStack::isolated().await;
    let jobs = DynamoJobs::new(ddb(&stack), stack.table("JobsTable"));
    let now = Utc::now();
    let job = Job::new("j", JobKind::OptimizationCycle, "u", json!({}), now);
    assert!(jobs.create(&job).await.unwrap());
    assert!(
        !jobs.create(&job).await.unwrap(),
        "a second create is a no-op"
    );
    // Progress is refused before the job runs.
    assert!(matches!(
        jobs.update_progress("j", &Progress::new(Stage::Collect, 1, 4), now)
            .await,
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        jobs.transition("j", JobStatus::Succeeded, JobOutcome::default(), now)
            .await,
        Err(Error::Conflict(_))
    ));
    let running = jobs
        .transition("j", JobStatus::Running, JobOutcome::default(), now)
        .await
        .unwrap();
    assert_eq!(running.status, JobStatus::Running);
    assert!(running.started_at.is_some());
    // Claiming twice: the second claimant loses.
    assert!(matches!(
        jobs.transition("j", JobStatus::Running, JobOutcome::default(), now)
            .await,
        Err(Error::Conflict(_))
    ));
    jobs.update_progress("j", &Progress::new(Stage::Analyse, 2, 4), now)
        .await
        .unwrap();
    assert_eq!(
        jobs.get("j", now)
            .await
            .unwrap()
            .unwrap()
            .progress
            .unwrap()
            .percent,
        50.0
    );
    let done = jobs
        .transition(
            "j",
            JobStatus::Succeeded,
            JobOutcome {
                result: Some(json!({"recommendations": 3})),
                error: None,
            },
            now,
        )
        .await
        .unwrap();
    assert_eq!(done.result, Some(json!({"recommendations": 3})));
    assert!(matches!(
        jobs.transition("j", JobStatus::Failed, JobOutcome::default(), now)
            .await,
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        jobs.transition("nope", JobStatus::Running, JobOutcome::default(), now)
            .await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test]
async fn metrics_are_written_in_batches_and_ingest_is_idempotent() {
    let stack = LocalStack::isolated().await;
    let metrics = DynamoMetrics::new(ddb(&stack), stack.table("MetricsTable"), codec());
    let start = Utc::now() - Duration::days(2);
    let samples: Vec<MetricSample> = (0..60)
        .map(|h| MetricSample {
            resource_id: "i-9".into(),
            service: Service::Ec2,
            metric: "CPUUtilization".into(),
            timestamp: start + Duration::hours(h),
            value: h as f64,
            unit: None,
        })
        .collect();
    assert_eq!(metrics.put(&samples, Utc::now()).await.unwrap(), 60);
    assert_eq!(metrics.put(&samples, Utc::now()).await.unwrap(), 60);
    let mut all = Vec::new();
    let mut token = None;
    loop {
        let page = metrics
            .query(
                &MetricQuery {
                    resource_id: "i-9".into(),
                    metric: "CPUUtilization".into(),
                    from: start,
                    to: start + Duration::hours(100),
                },
                Some(2),
                token.as_deref(),
                Utc::now(),
            )
            .await
            .unwrap();
        all.extend(page.items);
        token = page.next_token;
        if token.is_none() {
            break;
        }
    }
    assert_eq!(all.len(), 60);
    let mut bad = samples[0].clone();
    bad.value = f64::NAN;
    assert!(matches!(
        metrics.put(&[bad], Utc::now()).await,
        Err(Error::Validation(_))
    ));
}

#[tokio::test]
async fn threshold_versions_are_kept() {
    let stack = LocalStack::isolated().await;
    let store = DynamoThresholds::new(ddb(&stack), stack.table("ThresholdsTable"), codec());
    assert!(store.latest().await.unwrap().is_none());
    for v in 1..=3 {
        let set = ThresholdSet {
            version: v,
            created_at: Utc::now(),
            created_by: "admin".into(),
            note: None,
            rules: vec![],
        };
        store.put_version(&set).await.unwrap();
    }
    let dup = ThresholdSet {
        version: 2,
        created_at: Utc::now(),
        created_by: "x".into(),
        note: None,
        rules: vec![],
    };
    assert!(matches!(
        store.put_version(&dup).await,
        Err(Error::Conflict(_))
    ));
    assert_eq!(store.latest().await.unwrap().unwrap().version, 3);
    let first = store.history(Some(2), None).await.unwrap();
    assert_eq!(
        first.items.iter().map(|s| s.version).collect::<Vec<_>>(),
        [3, 2]
    );
    let second = store
        .history(Some(2), first.next_token.as_deref())
        .await
        .unwrap();
    assert_eq!(
        second.items.iter().map(|s| s.version).collect::<Vec<_>>(),
        [1]
    );
}

#[tokio::test]
async fn a_pending_request_past_its_expiry_cannot_be_decided_even_by_a_stale_decider() {
    let stack = LocalStack::isolated().await;
    let store = approvals_store(&stack);
    let created = t("2026-11-23T10:00:00.250Z");
    let (request, _) = approvals::open(
        &store,
        recommendation("i-late", Action::Stop),
        "cycle",
        None,
        Duration::hours(1),
        created,
    )
    .await
    .unwrap();
    let late = request.expires_at + Duration::seconds(2);
    // Through the use case: the domain refuses it, as an expired request.
    match approvals::decide(
        &store,
        &request.id,
        DecisionInput::new(ApprovalEvent::Approve, "alice"),
        late,
    )
    .await
    {
        Err(Error::IllegalTransition(t)) => assert_eq!(t.from, ApprovalStatus::Expired),
        other => panic!("expected an illegal transition, got {other:?}"),
    }
    // A write computed without that check (or whose clock lagged) is refused
    // by the store's condition on the stored expiry.
    for event in [ApprovalEvent::Approve, ApprovalEvent::Reject] {
        let to = transition(ApprovalStatus::Pending, event).unwrap();
        let next = ApprovalRequest {
            status: to,
            version: request.version + 1,
            updated_at: late,
            ..request.clone()
        };
        let decision = Decision {
            request_id: request.id.clone(),
            event,
            from: ApprovalStatus::Pending,
            to,
            actor: "alice".into(),
            reason: None,
            details: None,
            decided_at: late,
        };
        let audit = entry(
            &format!("late-{}", event.as_str()),
            &request.id,
            "alice",
            "approval.approve",
            late,
        );
        assert!(
            matches!(
                store.record(&request, &next, &decision, &audit).await,
                Err(Error::Conflict(_))
            ),
            "{}",
            event.as_str()
        );
    }
    assert_eq!(
        store.get(&request.id).await.unwrap().unwrap().status,
        ApprovalStatus::Pending
    );
    // The sweep still expires it.
    let (expired, _) = approvals::decide(
        &store,
        &request.id,
        DecisionInput::new(ApprovalEvent::Expire, "cycle"),
        late,
    )
    .await
    .unwrap();
    assert_eq!(expired.status, ApprovalStatus::Expired);
}

#[tokio::test]
async fn open_requests_are_found_by_their_locks_in_batches_of_a_hundred() {
    let stack = LocalStack::isolated().await;
    let store = approvals_store(&stack);
    let now = Utc::now();
    let mut opened = BTreeMap::new();
    let key_of = |id: &str| ResourceKey::new(None, "us-east-1", id);
    for i in [3, 77, 140] {
        let resource = format!("i-open-{i}");
        let (request, outcome) = approvals::open(
            &store,
            recommendation(&resource, Action::Stop),
            "cycle",
            None,
            Duration::days(7),
            now,
        )
        .await
        .unwrap();
        assert_eq!(outcome, CreateOutcome::Created);
        opened.insert((key_of(&resource), Action::Stop), request.id);
    }
    // 150 keys: two BatchGetItem calls; the same resources with another
    // action, or of the same name in another region, have no open request.
    let key_of = |id: &str| ResourceKey::new(None, "us-east-1", id);
    let mut keys: Vec<(ResourceKey, Action)> = (0..150)
        .map(|i| (key_of(&format!("i-open-{i}")), Action::Stop))
        .collect();
    keys.push((key_of("i-open-3"), Action::Terminate));
    keys.push((
        ResourceKey::new(None, "eu-west-1", "i-open-3"),
        Action::Stop,
    ));
    let found = store.open_requests(&keys).await.unwrap();
    let found: BTreeMap<_, _> = found.into_iter().collect();
    assert_eq!(found, opened);
}

/// A filter DynamoDB applies after `Limit` still fills the page: one EC2
/// request behind four RDS ones comes back for `limit=1`, and walking the
/// pages one at a time returns each match once.
#[tokio::test]
async fn a_filtered_listing_fills_its_page() {
    let stack = LocalStack::isolated().await;
    let store = approvals_store(&stack);
    let now = Utc::now();
    let mut ec2 = Vec::new();
    for (i, service) in [
        Service::Ec2,
        Service::Rds,
        Service::Rds,
        Service::Ec2,
        Service::Rds,
        Service::Rds,
    ]
    .into_iter()
    .enumerate()
    {
        let mut rec = recommendation(&format!("r-{i}"), Action::Stop);
        rec.service = service;
        let (request, _) = approvals::open(
            &store,
            rec,
            "cycle",
            None,
            Duration::days(7),
            now + Duration::seconds(i as i64),
        )
        .await
        .unwrap();
        if service == Service::Ec2 {
            ec2.push(request.id);
        }
    }
    let filter = ApprovalFilter {
        service: Some(Service::Ec2),
        ..ApprovalFilter::default()
    };
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..5 {
        let page = store
            .list(&filter, Some(1), token.as_deref())
            .await
            .unwrap();
        assert!(page.items.len() <= 1);
        seen.extend(page.items.into_iter().map(|r| r.id));
        token = page.next_token;
        if token.is_none() {
            break;
        }
    }
    ec2.reverse(); // newest first
    assert_eq!(seen, ec2);
    let inventory = DynamoInventory::new(ddb(&stack), stack.table("InventoryTable"), codec());
    let resources: Vec<Resource> = (0..6)
        .map(|i| {
            let mut r = Resource::new(Service::Ec2, format!("i-{i}"), "us-east-1");
            if i == 4 {
                r.tags.insert("team".into(), "core".into());
            }
            r
        })
        .collect();
    inventory.upsert(&resources).await.unwrap();
    let tagged = InventoryFilter {
        tag: Some("team=core".into()),
        ..InventoryFilter::default()
    };
    let page = inventory.list(&tagged, Some(1), None).await.unwrap();
    assert_eq!(
        page.items.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["i-4"]
    );
}
