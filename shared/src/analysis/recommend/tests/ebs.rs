//! EBS: unattached and unused volumes, gp2 to gp3, over-provisioned IOPS,
//! priced from the catalogue per region.

use super::*;

fn volume(id: &str, kind: &str, gib: f64, region: &str) -> Resource {
    let mut r = Resource::new(Service::Ebs, id, region);
    r.resource_type = Some(kind.into());
    r.attributes.insert("sizeGiB".into(), gib.into());
    r
}

fn ops(id: &str, read_iops: f64, write_iops: f64) -> Vec<MetricSeries> {
    vec![
        hourly(
            id,
            Service::Ebs,
            names::VOLUME_READ_OPS,
            "Sum",
            336,
            move |h| read_iops * 3600.0 * if h % 24 == 12 { 1.0 } else { 0.5 },
        ),
        hourly(
            id,
            Service::Ebs,
            names::VOLUME_WRITE_OPS,
            "Sum",
            336,
            move |h| write_iops * 3600.0 * if h % 24 == 12 { 1.0 } else { 0.5 },
        ),
    ]
}

#[test]
fn an_unattached_volume_is_deleted_after_a_snapshot_priced_per_region() {
    let set = default_thresholds().unwrap();
    for (region, gb, snap) in [("us-east-1", 0.10, 0.05), ("eu-west-1", 0.11, 0.05)] {
        let mut r = volume("vol-1", "gp2", 100.0, region);
        r.attributes.insert("state".into(), "available".into());
        let recs = recommend(&r, &[], &set, now());
        assert_eq!(recs.len(), 1, "{region}");
        let rec = &recs[0];
        assert_eq!(
            (rec.finding, rec.action),
            (FindingKind::Idle, Action::DeleteUnused)
        );
        assert!(
            rec.reason.contains("[rule ebs-unattached"),
            "{}",
            rec.reason
        );
        assert_eq!(rec.current_monthly_cost_usd, Some(round2(100.0 * gb)));
        assert_eq!(rec.monthly_savings_usd, Some(round2(100.0 * (gb - snap))));
    }
    // Created two days ago: not unattached "for the lookback".
    let mut young = volume("vol-2", "gp2", 100.0, "us-east-1");
    young.attributes.insert("state".into(), "available".into());
    young
        .attributes
        .insert("createdAt".into(), "2024-06-13T00:00:00Z".into());
    assert!(recommend(&young, &[], &set, now()).is_empty());
    // Detached three days ago (it wrote until then): not yet.
    let mut recent = volume("vol-3", "gp2", 100.0, "us-east-1");
    recent.attributes.insert("state".into(), "available".into());
    let wrote = vec![hourly(
        "vol-3",
        Service::Ebs,
        names::VOLUME_WRITE_OPS,
        "Sum",
        100,
        |_| 50.0,
    )];
    let a = analyze(&recent, &wrote, &set, now());
    let v = a
        .verdicts
        .iter()
        .find(|v| v.rule_id == "ebs-unattached")
        .unwrap();
    assert_eq!(v.outcome, Outcome::Clear);
    // In use: never "unattached".
    let mut used = volume("vol-4", "gp3", 100.0, "us-east-1");
    used.attributes.insert("state".into(), "in-use".into());
    used.attributes.insert("attachedTo".into(), "i-1".into());
    let a = analyze(&used, &[], &set, now());
    let v = a
        .verdicts
        .iter()
        .find(|v| v.rule_id == "ebs-unattached")
        .unwrap();
    assert_eq!(v.outcome, Outcome::Clear);
}

#[test]
fn an_attached_volume_without_io_for_seven_days_is_unused() {
    let set = default_thresholds().unwrap();
    let mut r = volume("vol-5", "gp3", 200.0, "us-east-1");
    r.attributes.insert("state".into(), "in-use".into());
    r.attributes.insert("attachedTo".into(), "i-9".into());
    let rec = &recommend(&r, &ops("vol-5", 0.0, 0.0), &set, now())[0];
    assert_eq!(rec.action, Action::DeleteUnused);
    assert!(rec.reason.contains("[rule ebs-idle"), "{}", rec.reason);
    assert!(rec.reason.contains("detach it"), "{}", rec.reason);
    assert_eq!(rec.monthly_savings_usd, Some(round2(200.0 * (0.08 - 0.05))));
}

#[test]
fn gp2_moves_to_gp3_at_its_baseline() {
    let set = default_thresholds().unwrap();
    // 500 GiB gp2: 1,500 IOPS and 250 MiB/s. gp3: 3,000 IOPS included,
    // 125 MiB/s more at $0.04: 500 x 0.08 + 125 x 0.04 = $45 against $50.
    let mut r = volume("vol-6", "gp2", 500.0, "us-east-1");
    r.attributes.insert("state".into(), "in-use".into());
    let rec = &recommend(&r, &ops("vol-6", 300.0, 200.0), &set, now())[0];
    assert_eq!(rec.action, Action::ChangeStorageClass);
    assert_eq!(rec.target_type.as_deref(), Some("gp3"));
    assert_eq!(rec.monthly_savings_usd, Some(5.0));
    assert!(
        rec.reason.contains("3000 IOPS and 250 MiB/s"),
        "{}",
        rec.reason
    );
    // 100 GiB: 128 MiB/s needs 3 more: 8 + 0.12 against 10.
    let mut small = volume("vol-7", "gp2", 100.0, "eu-central-1");
    small.attributes.insert("state".into(), "in-use".into());
    let rec = &recommend(&small, &ops("vol-7", 30.0, 20.0), &set, now())[0];
    assert_eq!(
        rec.monthly_savings_usd,
        Some(round2(100.0 * (0.119 - 0.0952) - 3.0 * 0.048))
    );
    // Not gp2: the rule offers nothing.
    let st1 = volume("vol-8", "st1", 500.0, "us-east-1");
    assert!(recommend(&st1, &ops("vol-8", 30.0, 20.0), &set, now()).is_empty());
}

#[test]
fn over_provisioned_iops_are_lowered_to_the_peak_plus_headroom() {
    let set = default_thresholds().unwrap();
    // io1 10,000 IOPS; peak 1,500 + 500 = 2,000 IOPS -> 2,500 at 80%.
    let mut r = volume("vol-9", "io1", 1000.0, "us-east-1");
    r.attributes.insert("iops".into(), 10_000.into());
    let rec = &recommend(&r, &ops("vol-9", 1500.0, 500.0), &set, now())[0];
    assert_eq!(rec.action, Action::LowerProvisionedCapacity);
    assert_eq!(rec.target_type.as_deref(), Some("2500 IOPS"));
    assert_eq!(rec.monthly_savings_usd, Some(round2(7500.0 * 0.065)));
    assert_eq!(rec.current_monthly_cost_usd, Some(125.0 + 650.0));
    // io2 is tiered: 40,000 IOPS = 32,000 x 0.065 + 8,000 x 0.0455.
    let mut io2 = volume("vol-10", "io2", 1000.0, "us-east-1");
    io2.attributes.insert("iops".into(), 40_000.into());
    let rec = &recommend(&io2, &ops("vol-10", 1500.0, 500.0), &set, now())[0];
    let cost = |iops: f64| {
        125.0 + iops.min(32_000.0) * 0.065 + (iops - 32_000.0).clamp(0.0, 32_000.0) * 0.0455
    };
    assert_eq!(rec.current_monthly_cost_usd, Some(round2(cost(40_000.0))));
    assert_eq!(
        rec.monthly_savings_usd,
        Some(round2(cost(40_000.0) - cost(2500.0)))
    );
}
