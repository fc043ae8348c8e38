//! The dashboard beside `/api` on the local REST gateway: files with their
//! content types, `index.html` for the app's routes, nothing outside the
//! folder, and `/api` still the function's.

use finops_local::site::Site;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn serve(dir: std::path::PathBuf) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let site = Site {
        dir,
        config: serde_json::json!({ "auth": "local", "wsUrl": "ws://127.0.0.1:1" }),
        tokens: Arc::new(|| serde_json::json!({ "users": [{ "user": "local-viewer" }] })),
    }
    .router();
    tokio::spawn(finops_local::rest::serve_rest_with_site(
        listener,
        |_req| async move {
            lambda_http::Response::builder()
                .status(200)
                .body(lambda_http::Body::from("from the function"))
                .unwrap()
        },
        Some(site),
    ));
    addr
}

/// The status line, the content type and the body of one raw request.
async fn get(addr: std::net::SocketAddr, path: &str) -> (String, String, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&out).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.lines().next().unwrap_or("").to_string();
    let ctype = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type: ")
                .map(str::to_string)
        })
        .unwrap_or_default();
    (status, ctype, body.to_string())
}

#[tokio::test]
async fn files_routes_config_and_tokens_are_served_and_api_stays_the_functions() {
    let root = std::env::temp_dir().join(format!("finops-site-{}", uuid::Uuid::new_v4()));
    let dist = root.join("dist");
    std::fs::create_dir_all(dist.join("assets")).unwrap();
    std::fs::write(dist.join("index.html"), "<!doctype html>app").unwrap();
    std::fs::write(dist.join("assets/app.js"), "console.log(1)").unwrap();
    std::fs::write(dist.join("assets/app.css"), "body{}").unwrap();
    std::fs::write(root.join("secret.txt"), "outside").unwrap();
    let addr = serve(dist).await;

    let (status, ctype, body) = get(addr, "/").await;
    assert!(status.contains("200"), "{status}");
    assert!(ctype.starts_with("text/html"), "{ctype}");
    assert_eq!(body, "<!doctype html>app");
    let (_, ctype, body) = get(addr, "/assets/app.js").await;
    assert!(ctype.contains("javascript"), "{ctype}");
    assert_eq!(body, "console.log(1)");
    let (_, ctype, _) = get(addr, "/assets/app.css").await;
    assert!(ctype.starts_with("text/css"), "{ctype}");

    // The app's own routes load the app.
    for path in ["/requests/abc", "/jobs", "/audit?actor=x"] {
        let (status, ctype, body) = get(addr, path).await;
        assert!(
            status.contains("200") && ctype.starts_with("text/html"),
            "{path}: {status} {ctype}"
        );
        assert_eq!(body, "<!doctype html>app", "{path}");
    }
    // Nothing outside the folder, however the path is spelt.
    for path in [
        "/../secret.txt",
        "/assets/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/assets/%2e%2e/%2e%2e/secret.txt",
    ] {
        let (_, _, body) = get(addr, path).await;
        assert!(!body.contains("outside"), "{path} left the folder");
    }

    let (status, ctype, body) = get(addr, "/config.json").await;
    assert!(status.contains("200") && ctype.starts_with("application/json"));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["auth"],
        "local"
    );
    let (_, _, body) = get(addr, "/local/tokens").await;
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["users"][0]["user"],
        "local-viewer"
    );

    let (_, _, body) = get(addr, "/api/health").await;
    assert_eq!(body, "from the function");
    let (_, _, body) = get(addr, "/api").await;
    assert_eq!(body, "from the function");
    std::fs::remove_dir_all(root).ok();
}
