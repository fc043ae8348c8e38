//! The $disconnect handler with events/ws-disconnect/disconnect.json against
//! the Connections table built from template.yaml.

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use chrono::{DateTime, Duration, Utc};
use finops_local::LocalStack;
use shared::domain::{Connection, Role, Topic};
use shared::dynamo::DynamoConnections;
use shared::store::{ConnectionStore, PageTokenCodec};
use ws_disconnect::{handle, Config, Deps, Env};

fn now() -> DateTime<Utc> {
    "2026-11-23T12:30:00Z".parse().unwrap()
}

fn event() -> ApiGatewayWebsocketProxyRequest {
    let path = format!(
        "{}/../../events/ws-disconnect/disconnect.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn connection(id: &str) -> Connection {
    Connection {
        connection_id: id.into(),
        user_id: "olivia".into(),
        roles: vec![Role::Operator],
        connected_at: now(),
        expires_at: now() + Duration::hours(2),
    }
}

async fn subscribers(store: &DynamoConnections, topic: &Topic) -> Vec<String> {
    store
        .subscribers(topic, None, None, now())
        .await
        .unwrap()
        .items
}

#[tokio::test]
async fn disconnect_removes_the_connection_and_all_its_subscriptions_only() {
    let stack = LocalStack::isolated().await;
    let env = stack.function_env("WsDisconnectFunction");
    let config = Config::from_env(&Env::of(env)).unwrap();
    let deps = Deps::new(&config, &stack.config);
    let ddb = aws_sdk_dynamodb::Client::new(&stack.config);
    let store = DynamoConnections::new(
        ddb.clone(),
        &config.connections_table,
        PageTokenCodec::new(b"test"),
    );
    let topics = [
        Topic::Jobs,
        Topic::Approvals,
        Topic::Resource("i-0abc".into()),
    ];
    for id in ["Conn-Operator1=", "Conn-Other0001="] {
        store.put(&connection(id)).await.unwrap();
        store.subscribe(id, &topics, now()).await.unwrap();
    }

    let r = handle(&deps, event(), now()).await;
    assert_eq!(r.status_code, 200);

    assert!(store.get("Conn-Operator1=", now()).await.unwrap().is_none());
    assert!(store
        .topics_of("Conn-Operator1=", now())
        .await
        .unwrap()
        .is_empty());
    for t in &topics {
        assert_eq!(subscribers(&store, t).await, vec!["Conn-Other0001="]);
    }
    // Nothing of the gone connection is left in the table at all.
    let left = ddb
        .scan()
        .table_name(&config.connections_table)
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default();
    assert_eq!(
        left.len(),
        4,
        "the other connection and its 3 subscriptions"
    );

    // A repeated $disconnect (or one after a 410 prune) is fine.
    assert_eq!(handle(&deps, event(), now()).await.status_code, 200);
}
