//! Costs and the forecast against the emulator's Cost Explorer, which
//! answers with what is injected. The injected answers are a queue shared by
//! the whole emulator, so this test has an emulator of its own.

mod common;

use chrono::{Datelike, Duration, NaiveDate};
use common::*;
use finops_local::LocalStack;
use serde_json::{json, Value};
use shared::domain::Role;

fn daily(start: NaiveDate, amounts: &[f64]) -> Vec<Value> {
    amounts
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let d = start + Duration::days(i as i64);
            json!({
                "TimePeriod": {"Start": d.to_string(), "End": (d + Duration::days(1)).to_string()},
                "Total": {"UnblendedCost": {"Amount": format!("{a:.4}"), "Unit": "USD"}},
                "Groups": [], "Estimated": false
            })
        })
        .collect()
}

#[tokio::test]
async fn costs_pages_cache_and_forecast() {
    let (_emulator, stack) = LocalStack::with_own_emulator().await;
    let h = harness_on(stack).await;

    // Page 1 and 2 of a grouped monthly question, then 91 days of daily history.
    let grouped = |start: &str, end: &str, groups: Value| {
        json!({
            "TimePeriod": {"Start": start, "End": end}, "Total": {}, "Groups": groups, "Estimated": false
        })
    };
    let page1 = json!({
        "ResultsByTime": [grouped("2026-09-01", "2026-10-01", json!([
            {"Keys": ["Amazon Elastic Compute Cloud - Compute"], "Metrics": {"UnblendedCost": {"Amount": "1200.50", "Unit": "USD"}}},
            {"Keys": ["Amazon Relational Database Service"], "Metrics": {"UnblendedCost": {"Amount": "300.25", "Unit": "USD"}}}
        ]))],
        "NextPageToken": "page-2", "DimensionValueAttributes": []
    });
    let page2 = json!({
        "ResultsByTime": [
            grouped("2026-09-01", "2026-10-01", json!([
                {"Keys": ["AWS Lambda"], "Metrics": {"UnblendedCost": {"Amount": "10.00", "Unit": "USD"}}}
            ])),
            grouped("2026-10-01", "2026-11-01", json!([
                {"Keys": ["Amazon Elastic Compute Cloud - Compute"], "Metrics": {"UnblendedCost": {"Amount": "1250.00", "Unit": "USD"}}}
            ]))
        ],
        "DimensionValueAttributes": []
    });
    let start = h.now.date_naive() - Duration::days(91);
    let weekly = [1.1, 1.15, 1.15, 1.1, 1.0, 0.75, 0.75];
    let amounts: Vec<f64> = (0..91)
        .map(|i| {
            let d = start + Duration::days(i);
            (100.0 + 0.5 * i as f64) * weekly[d.weekday().num_days_from_monday() as usize]
        })
        .collect();
    let history = json!({"ResultsByTime": daily(start, &amounts), "DimensionValueAttributes": []});
    h.stack
        .inject_costs(&json!({"results": [page1, page2, history]}))
        .await
        .unwrap();

    let mut req = Req::from_event("get-costs.json");
    req.token(Some(&h.as_role(Role::Viewer))).query(&[
        ("start", "2026-09-01"),
        ("end", "2026-11-01"),
        ("granularity", "MONTHLY"),
        ("groupBy", "service"),
    ]);
    let r = h.send(&req).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["pagesFetched"], 2);
    assert_eq!(r.body["cached"], false);
    assert_eq!(r.body["periods"].as_array().unwrap().len(), 2);
    assert!(
        (r.body["total"].as_f64().unwrap() - 2760.75).abs() < 1e-6,
        "{r:?}"
    );
    assert!((r.body["periods"][0]["total"].as_f64().unwrap() - 1510.75).abs() < 1e-6);
    assert_eq!(
        r.body["byGroup"][0]["key"],
        "Amazon Elastic Compute Cloud - Compute"
    );
    assert_eq!(h.app.cost_explorer.calls(), 2);

    // The same question, spelled differently: from the cache, no Cost Explorer call.
    let r = h
        .call(
            Role::Viewer,
            "GET",
            "/api/costs",
            &[
                ("start", "2026-09-01"),
                ("end", "2026-11-01"),
                ("granularity", "monthly"),
                ("groupBy", "SERVICE"),
            ],
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        (r.body["cached"].as_bool(), r.body["pagesFetched"].as_u64()),
        (Some(true), Some(0))
    );
    assert!((r.body["total"].as_f64().unwrap() - 2760.75).abs() < 1e-6);
    assert_eq!(h.app.cost_explorer.calls(), 2);

    for bad in [
        vec![("granularity", "HOURLY")],
        vec![("start", "2026-11-01"), ("end", "2026-10-01")],
        vec![("groupBy", "colour")],
        vec![("end", "-262143-01-05")],
        vec![("start", "01/10/2026")],
        vec![("end", "2027-01-01")],
    ] {
        let r = h.call(Role::Viewer, "GET", "/api/costs", &bad, None).await;
        assert_eq!(r.status, 400, "{bad:?}: {r:?}");
    }
    assert_eq!(
        h.app.cost_explorer.calls(),
        2,
        "bad questions never reach Cost Explorer"
    );

    // The computed forecast, from the injected daily history.
    let r = h
        .call(
            Role::Viewer,
            "GET",
            "/api/costs/forecast",
            &[("days", "14")],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["source"], "computed");
    assert_eq!(r.body["historyDays"], 91);
    let days = r.body["days"].as_array().unwrap();
    assert_eq!(days.len(), 14);
    assert_eq!(days[0]["date"], h.now.date_naive().to_string());
    // Noiseless history: the forecast continues the trend and the weekly shape.
    for (k, d) in days.iter().enumerate() {
        let date = h.now.date_naive() + Duration::days(k as i64);
        let expect = (100.0 + 0.5 * (91 + k) as f64)
            * weekly[date.weekday().num_days_from_monday() as usize];
        let got = d["mean"].as_f64().unwrap();
        assert!(
            (got - expect).abs() / expect < 0.01,
            "day {k}: {got} vs {expect}"
        );
        assert!(d["lower"].as_f64().unwrap() <= got && got <= d["upper"].as_f64().unwrap());
    }
    assert_eq!(h.app.cost_explorer.calls(), 3);
    // The history question is cached too.
    let r = h
        .call(
            Role::Viewer,
            "GET",
            "/api/costs/forecast",
            &[("days", "7")],
            None,
        )
        .await;
    assert_eq!(r.body["cached"], true);
    assert_eq!(h.app.cost_explorer.calls(), 3);
    for bad in ["0", "91", "x"] {
        let r = h
            .call(
                Role::Viewer,
                "GET",
                "/api/costs/forecast",
                &[("days", bad)],
                None,
            )
            .await;
        assert_eq!(r.status, 400, "{bad}");
    }
}

/// Every uncached page is USD 0.01 whoever asks: each user has an hourly
/// allowance of pages, cached answers are free, and another user is not
/// held back by the first.
#[tokio::test]
async fn cost_explorer_pages_are_rationed_per_user_and_hour() {
    let (_emulator, stack) = LocalStack::with_own_emulator().await;
    let h = harness_with(stack, &[("COST_EXPLORER_PAGES_PER_USER_HOUR", "3")]).await;
    let month = |start: &str, end: &str, amount: &str, next: Option<&str>| {
        let mut page = json!({
            "ResultsByTime": [{"TimePeriod": {"Start": start, "End": end},
                "Total": {"UnblendedCost": {"Amount": amount, "Unit": "USD"}},
                "Groups": [], "Estimated": false}],
            "DimensionValueAttributes": []
        });
        if let Some(n) = next {
            page["NextPageToken"] = json!(n);
        }
        page
    };
    h.stack
        .inject_costs(&json!({"results": [
            month("2026-08-01", "2026-09-01", "10.00", None),
            month("2026-09-01", "2026-10-01", "20.00", Some("p2")),
            month("2026-09-15", "2026-10-01", "5.00", None),
            month("2026-10-01", "2026-11-01", "30.00", None),
        ]}))
        .await
        .unwrap();
    let ask = |user: &'static str, start: &'static str, end: &'static str| {
        let mut req = Req::new("GET", "/api/costs");
        req.token(Some(&h.token(user, &[Role::Viewer]))).query(&[
            ("start", start),
            ("end", end),
            ("granularity", "MONTHLY"),
        ]);
        req
    };
    let r = h.send(&ask("alice", "2026-08-01", "2026-09-01")).await;
    assert_eq!(
        (r.status, r.body["pagesFetched"].as_u64()),
        (200, Some(1)),
        "{r:?}"
    );
    let r = h.send(&ask("alice", "2026-09-01", "2026-10-01")).await;
    assert_eq!(
        (r.status, r.body["pagesFetched"].as_u64()),
        (200, Some(2)),
        "{r:?}"
    );
    assert_eq!(h.app.cost_explorer.calls(), 3);

    // Three pages spent: alice's next uncached question is refused before any call.
    let r = h.send(&ask("alice", "2026-10-01", "2026-11-01")).await;
    assert_eq!(r.status, 429, "{r:?}");
    assert_eq!(r.body["error"]["code"], "rate_limited");
    let retry = r.body["error"]["details"]["retryAfterSeconds"]
        .as_u64()
        .unwrap();
    // fixed_now is on the hour: the allowance comes back in an hour.
    assert_eq!(retry, 3600);
    assert_eq!(r.headers["retry-after"], "3600");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("alice"),
        "{r:?}"
    );
    assert_eq!(
        h.app.cost_explorer.calls(),
        3,
        "a refused question costs nothing"
    );

    // What is cached still answers alice; bob has an allowance of his own.
    let r = h.send(&ask("alice", "2026-08-01", "2026-09-01")).await;
    assert_eq!(
        (r.status, r.body["cached"].as_bool()),
        (200, Some(true)),
        "{r:?}"
    );
    let r = h.send(&ask("bob", "2026-10-01", "2026-11-01")).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!((r.body["total"].as_f64().unwrap() - 30.0).abs() < 1e-9);
    assert_eq!(h.app.cost_explorer.calls(), 4);
}
