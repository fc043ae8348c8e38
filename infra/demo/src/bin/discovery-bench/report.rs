//! The discovery benchmark's figures: calls per API against the minimum
//! pagination allows, wall time, each worker's peak RSS and the cycle's
//! cost at list price.

use crate::Run;
use aws_config::SdkConfig;
use finops_demo::bench::wire::{self, Tally};
use finops_demo::bench::{mb, median, prices};
use finops_local::LocalStack;
use shared::collector::{minimum_get_metric_data_calls, APPENDED_DIMENSION_NAMESPACES};
use shared::config::Env;
use shared::cycle::metric_requests;
use shared::domain::{Job, JobStatus, Resource, Service};
use shared::dynamo::{DynamoCoverage, DynamoCycles, DynamoInventory, DynamoRecommendations};
use shared::store::{
    CoverageStore, CycleRunStore, InventoryStore, PageTokenCodec, RecommendationStore,
};
use std::collections::{BTreeMap, BTreeSet};

/// Pages for `items` at `size` a page; one even when empty.
fn pages(items: usize, size: usize) -> u64 {
    items.max(1).div_ceil(size) as u64
}

/// A minimum and what it rests on.
struct Floor {
    min: u64,
    why: String,
}

fn floor(min: u64, why: impl Into<String>) -> Floor {
    Floor {
        min,
        why: why.into(),
    }
}

/// Prints the report; `Ok(false)` when the cycle did not succeed.
pub async fn print(
    stack: &LocalStack,
    aws: &SdkConfig,
    run: &Run,
    job: &Job,
) -> Result<bool, String> {
    let config = processor::Config::from_env(&Env::of(stack.function_env("ProcessorFunction")))
        .map_err(|e| e.to_string())?;
    let ddb = aws_sdk_dynamodb::Client::new(aws);
    let coverage = DynamoCoverage::new(ddb.clone(), &config.accounts_table)
        .all()
        .await
        .map_err(|e| e.to_string())?;
    let inventory = DynamoInventory::new(
        ddb.clone(),
        &config.inventory_table,
        PageTokenCodec::new(b"discovery-bench-inventory-key!!!"),
    )
    .all()
    .await
    .map_err(|e| e.to_string())?;
    let cycle = CycleRunStore::get_run(
        &DynamoCycles::new(ddb.clone(), &config.cycles_table),
        &run.job_id,
    )
    .await
    .map_err(|e| e.to_string())?
    .ok_or("the cycle left no run record")?;
    let recs = DynamoRecommendations::new(ddb, &config.recommendations_table)
        .all(&run.job_id)
        .await
        .map_err(|e| e.to_string())?;
    let set = shared::analysis::default_thresholds().map_err(|e| e.to_string())?;

    let mut calls = Tally::new();
    let mut poller = Tally::new();
    for r in &run.reports {
        wire::merge(&mut calls, &r.calls);
        wire::merge(&mut poller, &r.poller);
    }

    // Per unit: what it analysed. As the cycle does, a unit takes the
    // inventory item of each id it found (the fleet says which), plus the
    // discovered items recorded under its account and region.
    let by_id: BTreeMap<&str, &Resource> = inventory.iter().map(|r| (r.id.as_str(), r)).collect();
    let mut by_unit: BTreeMap<(String, String), BTreeSet<&str>> = BTreeMap::new();
    for u in &run.fleet {
        by_unit
            .entry((u.account.clone(), u.region.clone()))
            .or_default()
            .extend(u.resources.iter().map(|r| r.1.as_str()));
    }
    for r in inventory.iter().filter(|r| r.discovered_by.is_some()) {
        by_unit
            .entry((r.account_id.clone().unwrap_or_default(), r.region.clone()))
            .or_default()
            .insert(r.id.as_str());
    }
    let mut gmd_min = 0u64;
    let mut gmd_planned = 0usize;
    let mut gmd_queries = 0usize;
    let mut list_min = 0u64;
    for ids in by_unit.values() {
        let resources: Vec<Resource> = ids
            .iter()
            .filter_map(|id| by_id.get(id).map(|r| (*r).clone()))
            .collect();
        let (requests, start, end) = metric_requests(&set, &resources, run.now);
        gmd_min += minimum_get_metric_data_calls(&requests, start, end);
        gmd_planned += shared::collector::plan(&requests, start, end).map_or(0, |p| p.calls.len());
        gmd_queries += requests.len();
        for s in Service::ALL {
            let per = finops_local::estate::published_metrics(&set, s)
                .iter()
                .filter(|q| q.namespace == s.namespace())
                .count();
            let n = resources.iter().filter(|r| r.service == s).count();
            list_min += pages(n * per, 500);
        }
        let appended: BTreeMap<(&str, &str), BTreeSet<&str>> = requests
            .iter()
            .filter(|q| APPENDED_DIMENSION_NAMESPACES.contains(&q.namespace.as_str()))
            .fold(BTreeMap::new(), |mut m, q| {
                m.entry((q.namespace.as_str(), q.metric.as_str()))
                    .or_default()
                    .insert(q.resource_id.as_str());
                m
            });
        list_min += appended
            .values()
            .map(|ids| pages(ids.len(), 500))
            .sum::<u64>();
    }
    // Ids that resources of several units share (names are unique per
    // account and region only), and what the inventory, keyed by id, kept.
    let mut units_of: BTreeMap<&str, (Service, usize)> = BTreeMap::new();
    for u in &run.fleet {
        for (service, id, _) in &u.resources {
            units_of.entry(id.as_str()).or_insert((*service, 0)).1 += 1;
        }
    }
    let mut shared_ids: BTreeMap<Service, (usize, usize)> = BTreeMap::new();
    for (service, n) in units_of.values().filter(|(_, n)| *n > 1) {
        let e = shared_ids.entry(*service).or_default();
        e.0 += 1;
        e.1 += n;
    }
    let units = coverage.len();
    let members = run.accounts.saturating_sub(1) as u64;
    let mut floors: BTreeMap<String, Floor> = BTreeMap::new();
    // Describe / List: what the product computes from what it found, per unit.
    for c in &coverage {
        for (k, m) in &c.minimum_calls {
            let f = floors.entry(k.clone()).or_insert_with(|| floor(0, ""));
            f.min += m;
        }
    }
    for (k, f) in floors.iter_mut() {
        f.why = format!("sum over the {units} units of the product's own floor");
        if k == "EC2:DescribeInstances" {
            f.why = format!("1,000 instances a page, per unit ({units} units)");
        }
    }
    let volumes: Vec<usize> = coverage
        .iter()
        .map(|c| c.by_service.get("ebs").copied().unwrap_or(0) as usize)
        .collect();
    floors.insert(
        "EC2:DescribeVolumes".into(),
        floor(
            volumes.iter().map(|v| pages(*v, 500)).sum(),
            format!(
                "500 volumes a page (the documented cap; the product counts 1,000), per unit: {} volumes, at most {} in a unit",
                volumes.iter().sum::<usize>(),
                volumes.iter().max().unwrap_or(&0)
            ),
        ),
    );
    floors.insert(
        "S3:GetBucketLocation".into(),
        floor(
            0,
            "AWS's ListBuckets names each bucket's region; the emulator's does not, so the product asks",
        ),
    );
    floors.insert(
        "Organizations:ListAccounts".into(),
        floor(
            pages(run.accounts, 20),
            "20 accounts a page, once (coordinator)",
        ),
    );
    floors.insert(
        "STS:AssumeRole".into(),
        floor(
            members,
            format!(
                "once per member account; each of the {} worker processes assumes the roles it needs",
                run.workers
            ),
        ),
    );
    floors.insert(
        "STS:GetCallerIdentity".into(),
        floor(1, "the deployment's account, once (each process asks once)"),
    );
    floors.insert(
        "CloudWatch:GetMetricData".into(),
        floor(
            gmd_min,
            format!(
                "{gmd_queries} queries, 500 a call / 100,800 points, per unit (lower bound; \
                 the planner's packing: {gmd_planned} calls)"
            ),
        ),
    );
    floors.insert(
        "CloudWatch:ListMetrics".into(),
        floor(
            list_min,
            "per unit: 8 namespaces at 500 series a page + the CWAgent listing",
        ),
    );
    let mut recs_by_unit: BTreeMap<(String, String), u64> = BTreeMap::new();
    for r in &recs {
        *recs_by_unit
            .entry((r.account_id.clone().unwrap_or_default(), r.region.clone()))
            .or_default() += 1;
    }
    floors.insert(
        "DynamoDB:BatchWriteItem".into(),
        floor(
            recs_by_unit.values().map(|n| n.div_ceil(25)).sum(),
            format!("{} recommendations, 25 a call, per unit", recs.len()),
        ),
    );
    floors.insert(
        "DynamoDB:TransactWriteItems".into(),
        floor(
            recs.len() as u64,
            "one transaction per approval request, by design",
        ),
    );
    let discovered: u64 = coverage.iter().map(|c| c.resources).sum();
    floors.insert(
        "DynamoDB:UpdateItem".into(),
        floor(
            discovered,
            format!(
                "{discovered} discovered resources: one UpdateItem each writes discovery's layer, by design (+ the job's and run's updates)"
            ),
        ),
    );
    floors.insert(
        "SQS:SendMessageBatch".into(),
        floor(
            pages(units, 10),
            format!("{units} unit messages, 10 a batch"),
        ),
    );

    // Timings.
    let unit_secs: Vec<f64> = run
        .handled
        .iter()
        .filter(|h| h.label.starts_with("unit "))
        .map(|h| h.secs)
        .collect();
    let coordinator: f64 = run
        .handled
        .iter()
        .filter(|h| h.label == "coordinator")
        .map(|h| h.secs)
        .sum();
    let last = run
        .handled
        .iter()
        .filter(|h| h.status.as_deref().is_some_and(|s| s != "running"))
        .map(|h| (h.label.clone(), h.secs))
        .next();
    let ok = job.status == JobStatus::Succeeded;
    let found: u64 = coverage.iter().map(|c| c.resources).sum();
    let failed_units = coverage.iter().filter(|c| c.error.is_some()).count();
    let mut by_service: BTreeMap<String, u64> = BTreeMap::new();
    for c in &coverage {
        for (s, n) in &c.by_service {
            *by_service.entry(s.clone()).or_default() += n;
        }
    }
    println!(
        "  job {}: {units} units ({failed_units} failed), {found} resources discovered ({}), \
         {} analysed, {} recommendations, USD {:.2}/month",
        job.status.as_str(),
        by_service
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect::<Vec<_>>()
            .join(", "),
        cycle.resources_analysed,
        recs.len(),
        cycle.monthly_savings_usd
    );
    println!(
        "  cycle wall time      {:.1} s with {} workers (child processes), batch size {}: \
         coordinator {coordinator:.1} s; units median {:.1} s, max {:.1} s, sum {:.1} s; \
         finalising message {}",
        run.wall_s,
        run.workers,
        run.batch,
        median(&unit_secs),
        unit_secs.iter().copied().fold(0.0, f64::max),
        unit_secs.iter().sum::<f64>(),
        last.map_or("?".into(), |(l, s)| format!("{l} ({s:.1} s)"))
    );
    let stages: Vec<String> = cycle
        .stages
        .iter()
        .map(|s| format!("{} {:.1} s", s.stage, s.duration_ms as f64 / 1000.0))
        .collect();
    println!("  recorded stages      {}", stages.join(", "));
    for r in &run.reports {
        println!(
            "  worker {}            {} messages, busy {:.1} s, peak RSS {:.1} MB \
             ({:.1} MB at start, {:.1} MB with clients and the synthetic CloudWatch built)",
            r.worker,
            r.messages,
            r.busy_s,
            mb(r.hwm_kb),
            mb(r.rss_start_kb),
            mb(r.rss_ready_kb)
        );
    }
    println!("  AWS calls by the processor workers (counted on the wire, retries included):");
    println!(
        "    {:<48} {:>7} {:>8}  basis of the minimum",
        "service:operation", "calls", "minimum"
    );
    for (k, s) in &calls {
        let (min, why) = floors
            .get(k)
            .map(|f| (f.min.to_string(), f.why.as_str()))
            .unwrap_or(("-".into(), "per item or per message, by design"));
        println!("    {k:<48} {:>7} {min:>8}  {why}", s.calls);
    }
    for (k, f) in &floors {
        if !calls.contains_key(k) {
            println!("    {k:<48} {:>7} {:>8}  {}", 0, f.min, f.why);
        }
    }
    let total: u64 = calls.values().map(|s| s.calls).sum();
    println!("    total {total}");
    let cov_calls: u64 = coverage.iter().flat_map(|c| c.calls.values()).sum();
    let cov_keys: BTreeSet<&String> = coverage.iter().flat_map(|c| c.calls.keys()).collect();
    println!(
        "  discovery's own count (coverage records): {cov_calls} describe / list calls; \
         the same operations on the wire: {}",
        cov_keys.iter().map(|k| wire::calls(&calls, k)).sum::<u64>()
    );
    let gmd = calls
        .get("CloudWatch:GetMetricData")
        .cloned()
        .unwrap_or_default();
    println!(
        "  GetMetricData: {} calls ({} continuation pages), {} metrics asked for {gmd_queries} planned queries",
        gmd.calls, gmd.continued, gmd.metrics
    );
    let items = inventory
        .iter()
        .filter(|r| r.discovered_by.is_some())
        .count();
    println!(
        "  inventory: {items} discovered items for {found} resources discovered; ids shared by \
         resources of several units (the inventory is keyed by id): {}",
        if shared_ids.is_empty() {
            "none".to_string()
        } else {
            shared_ids
                .iter()
                .map(|(s, (ids, n))| format!("{} {ids} ids held by {n} resources", s.as_str()))
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    let shared_recs: Vec<&shared::domain::Recommendation> = recs
        .iter()
        .filter(|r| {
            units_of
                .get(r.resource_id.as_str())
                .is_some_and(|(_, n)| *n > 1)
        })
        .collect();
    if !shared_recs.is_empty() {
        let resources: usize = shared_recs
            .iter()
            .map(|r| r.resource_id.as_str())
            .collect::<BTreeSet<_>>()
            .iter()
            .map(|id| units_of.get(id).map_or(0, |(_, n)| *n))
            .sum();
        println!(
            "    recommendations for those ids: {} (their ids are resource + action, so one per \
             name and action survives, with one unit's account and region) for {resources} resources",
            shared_recs.len()
        );
    }
    let mut by_service: BTreeMap<&str, (u64, f64)> = BTreeMap::new();
    for (k, st) in &calls {
        let e = by_service
            .entry(k.split(':').next().unwrap_or(""))
            .or_default();
        e.0 += st.calls;
        e.1 += st.seconds;
    }
    println!(
        "  time waiting on each service, summed over the workers' calls (the emulator's, or in process for CloudWatch): {}",
        by_service
            .iter()
            .map(|(s, (n, t))| format!("{s} {t:.1} s / {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let es: Vec<String> = poller
        .iter()
        .map(|(k, s)| format!("{k} {}", s.calls))
        .collect();
    println!(
        "  event source (Lambda's SQS polling, not the function's): {}",
        es.join(", ")
    );
    println!("  cost of the cycle at list price (function's requests):");
    let mut sum = 0.0;
    for line in prices::bill(&calls) {
        println!(
            "    {:<44} {:<40} USD {:.4}",
            line.what, line.quantity, line.usd
        );
        sum += line.usd;
    }
    let polling: f64 = prices::bill(&poller).iter().map(|l| l.usd).sum();
    println!(
        "    total USD {sum:.4} (+ USD {polling:.6} for the event source's {} SQS calls)",
        poller.values().map(|s| s.calls).sum::<u64>()
    );
    println!("    {}", prices::basis());
    println!(
        "  setup (not measured): organization {:.1} s, estate {:.1} s; machine at start: {}; at end: {}",
        run.org_s, run.setup_s, run.machine_start, run.machine_end
    );
    println!(
        "  target {} resources: created {}",
        run.resources_target,
        run.fleet.iter().map(|u| u.resources.len()).sum::<usize>()
    );
    Ok(ok)
}
