//! The local REST gateway under requests a client controls: the headers
//! API Gateway sets itself (`Host`, `X-Forwarded-*`) must not reach the
//! function from the client, and no request may take the server down.

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const WAIT: Duration = Duration::from_secs(10);

/// Serves a handler that echoes the URL and headers the function sees.
async fn serve() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(finops_local::rest::serve_rest(listener, |req| async move {
        let seen = serde_json::json!({
            "uri": req.uri().to_string(),
            "host": req.headers().get("host").and_then(|v| v.to_str().ok()),
            "proto": req.headers().get("x-forwarded-proto").and_then(|v| v.to_str().ok()),
        });
        lambda_http::Response::builder()
            .status(200)
            .body(lambda_http::Body::from(seen.to_string()))
            .unwrap()
    }));
    addr
}

/// One raw HTTP/1.1 request; the status line and body, or `None` when the
/// connection closed without an answer.
async fn raw(addr: std::net::SocketAddr, head: &str) -> Option<(String, String)> {
    let mut s = TcpStream::connect(addr).await.ok()?;
    let req = format!("{head}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.ok()?;
    let mut out = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut out))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text.lines().next()?.to_string();
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (!status.is_empty()).then_some((status, body))
}

#[tokio::test]
async fn client_host_and_forwarded_headers_never_reach_the_function() {
    let addr = serve().await;
    let heads = [
        "GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Forwarded-Proto: 1",
        "GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Forwarded-Proto: ht tp",
        "GET /api/health HTTP/1.1\r\nHost: bad host",
        "GET /api/health HTTP/1.1\r\nHost: 127.0.0.1:99999",
        "GET /api/health HTTP/1.1\r\nHost: [::1",
        "GET /api/health HTTP/1.1\r\nHost: evil.example\r\nX-Forwarded-Host: a b\r\nX-Forwarded-Port: x",
        "GET /api/health?a=%zz&b HTTP/1.1\r\nHost: 127.0.0.1\r\nForwarded: for=\"[",
    ];
    for head in heads {
        let answer = raw(addr, head).await;
        let (status, body) = answer.unwrap_or_else(|| panic!("no answer to {head:?}"));
        assert!(status.contains(" 200 "), "{head:?}: {status}");
        let seen: serde_json::Value = serde_json::from_str(&body).unwrap();
        let expected_host = format!("127.0.0.1:{}", addr.port());
        assert_eq!(seen["host"], expected_host.as_str(), "{head:?}: {seen}");
        assert_eq!(seen["proto"], "http", "{head:?}: {seen}");
        assert!(
            seen["uri"]
                .as_str()
                .unwrap()
                .starts_with(&format!("http://{expected_host}/")),
            "{head:?}: {seen}"
        );
        // The server is still serving after each.
        let (ok, _) = raw(addr, "GET /api/health HTTP/1.1\r\nHost: 127.0.0.1")
            .await
            .expect("still serving");
        assert!(ok.contains(" 200 "), "{ok}");
    }
}
