//! What the local REST gateway serves besides `/api`: the dashboard's built
//! files (`web/dist`), its runtime configuration (`/config.json`) and the
//! local sign-in's tokens (`/local/tokens`). In AWS, CloudFront serves the
//! files and the configuration, and Cognito issues the tokens; none of this
//! is part of the api function.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use tower_http::services::{ServeDir, ServeFile};

/// Mints the tokens of the local role picker, fresh at each request so a
/// page kept open past a token's lifetime can sign in again.
pub type TokenMint = Arc<dyn Fn() -> Value + Send + Sync>;

/// The dashboard as the local gateway serves it.
pub struct Site {
    /// The built app (`web/dist`): files by path, and `index.html` for every
    /// other path, so the app's own routes survive a reload.
    pub dir: PathBuf,
    /// `/config.json`: what the app needs to know at run time (sign-in mode,
    /// WebSocket URL).
    pub config: Value,
    /// `/local/tokens`: one token per role.
    pub tokens: TokenMint,
}

fn no_store(body: Value) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body.to_string(),
    )
        .into_response()
}

impl Site {
    /// The router for every non-`/api` path. ServeDir refuses paths that
    /// leave `dir` (`..`, absolute components) and names each file's content
    /// type; a missing file falls back to `index.html` with 200.
    pub fn router(self) -> axum::Router {
        let config = self.config;
        let tokens = self.tokens;
        let files = ServeDir::new(&self.dir)
            .append_index_html_on_directories(true)
            .fallback(ServeFile::new(self.dir.join("index.html")));
        axum::Router::new()
            .route(
                "/config.json",
                get(move || {
                    let config = config.clone();
                    async move { no_store(config) }
                }),
            )
            .route(
                "/local/tokens",
                get(move || {
                    let tokens = tokens.clone();
                    async move { no_store(tokens()) }
                }),
            )
            .fallback_service(files)
    }
}
