//! Auto-approval policies applied by the cycle, against the emulator: an
//! estate created through the AWS APIs and discovered, one cycle through
//! SQS and the processor, then the execution jobs the policies queued. The
//! emulator is the judge of what changed.

mod common;

use chrono::{Timelike, Utc};
use common::{drain, jobs_queue, type_and_state, volume_type, Quiet};
use finops_local::event_source::EventSource;
use finops_local::{demo_estate, estate, LocalStack};
use processor::{Config, Env, Processor};
use serde_json::json;
use shared::domain::execution::{Schedule, Window};
use shared::domain::*;
use shared::jobs::submit;
use shared::store::*;

fn policy(id: &str, dry_run: bool, matcher: PolicyMatch, window: Schedule) -> Policy {
    Policy {
        id: id.into(),
        version: 1,
        description: None,
        enabled: true,
        dry_run,
        matcher,
        window,
        updated_by: "admin".into(),
        updated_at: Utc::now(),
    }
}

async fn cycle(p: &Processor, source: &EventSource, id: &str) -> serde_json::Value {
    let job = Job::new(
        id,
        JobKind::OptimizationCycle,
        "alice",
        json!({"trigger": "manual", "services": ["ec2", "ebs"]}),
        Utc::now(),
    );
    submit(&p.jobs, &p.queue, job, Utc::now()).await.unwrap();
    assert!(drain(source, p).await.is_empty());
    let done = p.jobs.get(id, Utc::now()).await.unwrap().unwrap();
    assert_eq!(done.status, JobStatus::Succeeded, "{done:?}");
    done.result.unwrap_or_default()
}

/// What the audit trail holds with `actor` as its actor.
async fn audited_by(p: &Processor, actor: &str) -> Vec<AuditEntry> {
    p.audit
        .query(
            &AuditQuery {
                actor: Some(actor.into()),
                ..AuditQuery::default()
            },
            Some(100),
            None,
            Utc::now(),
        )
        .await
        .unwrap()
        .items
}

#[tokio::test(flavor = "multi_thread")]
async fn policies_approve_what_they_match_in_their_window_and_a_dry_run_changes_nothing() {
    let (_emulator, stack) = LocalStack::with_own_emulator().await;
    let now = Utc::now();
    // Three instances (healthy, idle, oversized) and three volumes (gp2,
    // gp3, io1), created through the APIs with 14 days of metrics.
    let mut fleet = estate::of_mix(
        &shared::analysis::default_thresholds().unwrap(),
        now,
        14,
        &[(Service::Ec2, 3), (Service::Ebs, 3)],
    );
    demo_estate::create_estate(&stack, &mut fleet, None)
        .await
        .unwrap();
    let mut env = stack.function_env("ProcessorFunction");
    env.insert("REGIONS".into(), "us-east-1".into());
    env.insert("ACCOUNTS_MODE".into(), "self".into());
    let p = Processor::new(
        Config::from_env(&Env::of(env)).unwrap(),
        &stack.config,
        Box::new(Quiet),
    );
    // A window that opens in two hours, for an hour, every day.
    let later = (now.hour() + 2) % 24;
    let closed: Window = format!("daily {later:02}:00-{:02}:00 UTC", (later + 1) % 24)
        .parse()
        .unwrap();
    let only = |service, action| PolicyMatch {
        services: vec![service],
        actions: vec![action],
        max_risk: 4,
        ..PolicyMatch::default()
    };
    for policy in [
        policy(
            "a-gp3",
            false,
            only(Service::Ebs, Action::ChangeStorageClass),
            Schedule::default(),
        ),
        policy(
            "b-stop-at-night",
            false,
            only(Service::Ec2, Action::Stop),
            Schedule(vec![closed]),
        ),
        policy(
            "c-rightsize-dry",
            true,
            only(Service::Ec2, Action::Rightsize),
            Schedule::default(),
        ),
    ] {
        PolicyStore::put(&p.policies, &policy).await.unwrap();
    }
    let source = jobs_queue(&stack);
    let summary = cycle(&p, &source, "job-policies-1").await;

    let requests = p
        .approvals
        .list(&ApprovalFilter::default(), Some(100), None)
        .await
        .unwrap()
        .items;
    let find = |service, action| {
        requests
            .iter()
            .find(|r| r.recommendation.service == service && r.recommendation.action == action)
            .unwrap_or_else(|| panic!("a {service:?} {action:?} request in {requests:#?}"))
    };
    let gp3 = find(Service::Ebs, Action::ChangeStorageClass);
    let stop = find(Service::Ec2, Action::Stop);
    let rightsize = find(Service::Ec2, Action::Rightsize);
    let ec2 = aws_sdk_ec2::Client::new(&stack.config);

    // a-gp3 approved and executed the gp2 volume's change.
    assert_eq!(gp3.status, ApprovalStatus::Executed, "{gp3:#?}");
    assert_eq!(
        volume_type(&ec2, &gp3.recommendation.resource_id).await,
        "gp3"
    );
    let decisions = p.approvals.decisions(&gp3.id).await.unwrap();
    assert_eq!(decisions[0].actor, "policy:a-gp3", "{decisions:#?}");
    // b-stop-at-night approved the idle instance, whose stop waits for the
    // policy's window: scheduled for when it opens, the instance running.
    assert_eq!(stop.status, ApprovalStatus::Scheduled, "{stop:#?}");
    let opens = stop.scheduled_for.unwrap();
    assert_eq!((opens.hour(), opens.minute()), (later, 0));
    let (_, state) = type_and_state(&ec2, &stop.recommendation.resource_id).await;
    assert_eq!(state, "running");
    // c-rightsize-dry only reported: pending, audited, instance unchanged.
    assert_eq!(rightsize.status, ApprovalStatus::Pending, "{rightsize:#?}");
    let before = fleet
        .resources
        .iter()
        .find(|r| r.id == rightsize.recommendation.resource_id)
        .and_then(|r| r.resource_type.clone())
        .unwrap();
    assert_eq!(
        type_and_state(&ec2, &rightsize.recommendation.resource_id).await,
        (before, "running".to_string())
    );
    let trail = audited_by(&p, "policy:c-rightsize-dry").await;
    assert_eq!(trail.len(), 1, "{trail:#?}");
    assert_eq!(trail[0].action, "policy.dry_run");
    assert_eq!(trail[0].entity_id, rightsize.id);
    // Nothing else was approved: every other request is pending.
    let others: Vec<&ApprovalRequest> = requests
        .iter()
        .filter(|r| ![&gp3.id, &stop.id].contains(&&r.id))
        .filter(|r| r.status != ApprovalStatus::Pending)
        .collect();
    assert!(others.is_empty(), "{others:#?}");
    assert_eq!(
        summary["approvalRequestsAutoApproved"],
        json!(2),
        "{summary}"
    );
    assert_eq!(summary["policyDryRunMatches"], json!(1), "{summary}");

    // A second cycle approves nothing again and audits the dry run once.
    let summary = cycle(&p, &source, "job-policies-2").await;
    assert_eq!(
        summary["approvalRequestsAutoApproved"],
        json!(0),
        "{summary}"
    );
    let again = audited_by(&p, "policy:c-rightsize-dry").await;
    assert_eq!(again.len(), 1, "{again:#?}");
}
