//! The $connect handler, called directly with the events of
//! events/ws-connect/ (tokens minted for 2026-11-23T12:00:00Z with the local
//! secret below), against the Connections table built from template.yaml.

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use chrono::{DateTime, Utc};
use finops_local::LocalStack;
use shared::domain::Role;
use shared::dynamo::DynamoConnections;
use shared::store::{ConnectionStore, PageTokenCodec};
use ws_connect::{handle, Config, Deps, Env, CONNECTION_LIFETIME};

const SECRET: &str = "finops-local-development-secret-0123456789";

fn now() -> DateTime<Utc> {
    "2026-11-23T12:00:00Z".parse().unwrap()
}

fn event(name: &str) -> ApiGatewayWebsocketProxyRequest {
    let path = format!(
        "{}/../../events/ws-connect/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

struct Fixture {
    deps: Deps,
    /// A second view of the same table, to look at what the handler stored.
    store: DynamoConnections,
    ddb: aws_sdk_dynamodb::Client,
    table: String,
    _stack: LocalStack,
}

async fn fixture() -> Fixture {
    let stack = LocalStack::isolated().await;
    let env = stack.function_env("WsConnectFunction");
    let config = Config::from_env(&Env::of(env).with(&[
        ("AUTH_ISSUER", "finops-local"),
        ("AUTH_AUDIENCE", "finops-lambda"),
        ("AUTH_HS256_SECRET", SECRET),
    ]))
    .unwrap();
    let ddb = aws_sdk_dynamodb::Client::new(&stack.config);
    Fixture {
        deps: Deps::new(&config, &stack.config),
        store: DynamoConnections::new(
            ddb.clone(),
            &config.connections_table,
            PageTokenCodec::new(b"test"),
        ),
        ddb,
        table: config.connections_table,
        _stack: stack,
    }
}

impl Fixture {
    async fn item_count(&self) -> usize {
        self.ddb
            .scan()
            .table_name(&self.table)
            .send()
            .await
            .unwrap()
            .items
            .unwrap_or_default()
            .len()
    }
}

fn status(r: &aws_lambda_events::apigw::ApiGatewayProxyResponse) -> i64 {
    r.status_code
}

#[tokio::test]
async fn a_valid_token_stores_the_connection_with_user_roles_and_the_2_hour_limit() {
    let f = fixture().await;
    let r = handle(&f.deps, event("valid-token.json"), now()).await;
    assert_eq!(status(&r), 200);
    assert!(r.headers.get("sec-websocket-protocol").is_none());
    let c = f
        .store
        .get("Conn-Operator1=", now())
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(c.user_id, "olivia");
    assert_eq!(c.roles, vec![Role::Operator]);
    assert_eq!(c.connected_at, now());
    assert_eq!(c.expires_at, now() + CONNECTION_LIFETIME);
    // Gone for reads once API Gateway's limit has passed.
    assert!(f
        .store
        .get("Conn-Operator1=", now() + CONNECTION_LIFETIME)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn a_token_in_the_protocol_header_is_accepted_and_the_protocol_echoed() {
    let f = fixture().await;
    let r = handle(&f.deps, event("protocol-header.json"), now()).await;
    assert_eq!(status(&r), 200);
    assert_eq!(
        r.headers.get("sec-websocket-protocol").unwrap(),
        "finops",
        "the browser's offered subprotocol comes back"
    );
    let c = f
        .store
        .get("Conn-Browser01=", now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (c.user_id.as_str(), c.roles.as_slice()),
        ("vera", &[Role::Viewer][..])
    );
}

#[tokio::test]
async fn missing_expired_forged_and_unsigned_tokens_are_refused_and_nothing_is_stored() {
    let f = fixture().await;
    for name in [
        "no-token.json",
        "expired-token.json",
        "wrong-signature.json",
        "alg-none.json",
    ] {
        let e = event(name);
        let id = e.request_context.connection_id.clone().unwrap();
        let r = handle(&f.deps, e, now()).await;
        assert_eq!(status(&r), 401, "{name}");
        assert!(f.store.get(&id, now()).await.unwrap().is_none(), "{name}");
    }
    assert_eq!(f.item_count().await, 0);
}

#[tokio::test]
async fn a_valid_token_without_any_role_is_forbidden() {
    let f = fixture().await;
    let r = handle(&f.deps, event("no-role.json"), now()).await;
    assert_eq!(status(&r), 403);
    assert_eq!(f.item_count().await, 0);
}

#[tokio::test]
async fn only_the_valid_token_of_the_lot_is_accepted() {
    let f = fixture().await;
    let mut accepted = Vec::new();
    for name in [
        "valid-token.json",
        "no-token.json",
        "expired-token.json",
        "wrong-signature.json",
        "alg-none.json",
    ] {
        if status(&handle(&f.deps, event(name), now()).await) == 200 {
            accepted.push(name);
        }
    }
    assert_eq!(accepted, vec!["valid-token.json"]);
    // META only: one item, no subscriptions.
    assert_eq!(f.item_count().await, 1);
}

#[tokio::test]
async fn a_connection_lives_no_longer_than_its_token() {
    let f = fixture().await;
    let auth = shared::auth::AuthConfig {
        issuer: "finops-local".into(),
        audience: "finops-lambda".into(),
        mode: shared::auth::KeyMode::Hs256 {
            secret: SECRET.as_bytes().to_vec(),
        },
    };
    let token = shared::auth::LocalClaims::new(
        &auth,
        "olivia",
        &[Role::Operator],
        now(),
        chrono::Duration::minutes(5),
    )
    .sign_hs256(SECRET.as_bytes())
    .unwrap();
    let mut e = event("valid-token.json");
    e.query_string_parameters = [("token".to_string(), token)]
        .into_iter()
        .collect::<std::collections::HashMap<_, _>>()
        .into();
    let r = handle(&f.deps, e, now()).await;
    assert_eq!(status(&r), 200);
    let c = f
        .store
        .get("Conn-Operator1=", now())
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(c.expires_at, now() + chrono::Duration::minutes(5));
    // Past the token's expiry the connection authorizes nothing: ws-message
    // finds no connection and answers `unauthorized`.
    assert!(f
        .store
        .get("Conn-Operator1=", now() + chrono::Duration::minutes(6))
        .await
        .unwrap()
        .is_none());
}
