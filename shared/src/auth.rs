//! Who is calling. Bearer tokens are JWTs verified with one pinned algorithm:
//! RS256 against the issuer's JWKS (Cognito in AWS), or HS256 with a shared
//! secret for local use. Roles come from the `cognito:groups` claim.
//!
//! The clock is a parameter (`now`), so expiry is testable without sleeping.

use crate::config::{ConfigError, Env};
use crate::domain::Role;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};
use tokio::sync::RwLock;

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
const LEEWAY_SECONDS: i64 = 30;
/// Fetched keys are used this long, then fetched again: a key the issuer
/// withdrew stops verifying within the hour.
const JWKS_TTL: Duration = Duration::from_secs(3600);
/// An unknown `kid` triggers a JWKS refetch at most this often, so a flood
/// of forged tokens cannot turn into a flood of requests to the issuer,
/// while a rotated-in key is picked up quickly.
const JWKS_REFRESH_MIN_INTERVAL: Duration = Duration::from_secs(30);
/// After a failed fetch, requests fail fast (or use the keys already held)
/// this long instead of each waiting on the issuer again.
const JWKS_FAILURE_BACKOFF: Duration = Duration::from_secs(10);

/// A verified caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    /// `cognito:username`, else `sub`.
    pub user_id: String,
    pub roles: Vec<Role>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

impl Identity {
    pub fn has(&self, needed: Role) -> bool {
        crate::domain::has_role(&self.roles, needed)
    }

    /// The identity an API Gateway authorizer already verified, without any
    /// audience check: edges use [`Verifier::authorizer_identity`]. Its claims
    /// object (`requestContext.authorizer.claims` for REST APIs,
    /// `requestContext.authorizer.jwt.claims` for HTTP APIs). Groups arrive
    /// as a JSON array, or flattened to a string such as `[admin viewer]` or
    /// `admin,viewer`; every shape is accepted.
    pub fn from_authorizer_claims(claims: &serde_json::Value) -> Option<Identity> {
        let text = |k: &str| claims.get(k).and_then(|v| v.as_str()).map(str::to_string);
        let user_id = text("cognito:username")
            .or_else(|| text("username"))
            .or_else(|| text("sub"))?;
        let groups: Vec<String> = match claims.get("cognito:groups") {
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            Some(serde_json::Value::String(s)) => split_groups(s),
            _ => Vec::new(),
        };
        let expires_at = claims
            .get("exp")
            .and_then(|v| v.as_i64().or_else(|| v.as_str()?.parse().ok()))
            .and_then(|t| DateTime::from_timestamp(t, 0));
        Some(Identity {
            user_id,
            roles: roles_of(&groups),
            expires_at,
        })
    }
}

fn split_groups(s: &str) -> Vec<String> {
    if let Ok(list) = serde_json::from_str::<Vec<String>>(s) {
        return list;
    }
    s.trim_matches(|c| c == '[' || c == ']')
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|g| !g.is_empty())
        .map(str::to_string)
        .collect()
}

/// Known roles among `groups`, sorted and deduplicated; other groups are ignored.
pub fn roles_of(groups: &[String]) -> Vec<Role> {
    let mut roles: Vec<Role> = groups.iter().filter_map(|g| Role::parse(g)).collect();
    roles.sort();
    roles.dedup();
    roles
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no token was presented")]
    Missing,
    #[error("the token is not valid: {0}")]
    Invalid(String),
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    /// The issuer's keys could not be fetched: not the caller's fault.
    #[error("the token issuer's keys are unavailable: {0}")]
    KeysUnavailable(String),
}

/// How tokens are checked.
#[derive(Clone, PartialEq, Eq)]
pub enum KeyMode {
    /// RS256 against the JWKS at this URL (Cognito: `<issuer>/.well-known/jwks.json`).
    Rs256 { jwks_url: String },
    /// HS256 with a shared secret: local use only.
    Hs256 { secret: Vec<u8> },
    /// No verification: every caller is a local admin. Local use only, and
    /// only when asked for explicitly.
    Disabled,
}

impl std::fmt::Debug for KeyMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyMode::Rs256 { jwks_url } => write!(f, "Rs256({jwks_url})"),
            KeyMode::Hs256 { .. } => f.write_str("Hs256(..)"),
            KeyMode::Disabled => f.write_str("Disabled"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    pub issuer: String,
    /// Matched against `aud` (ID tokens) or `client_id` (Cognito access tokens).
    pub audience: String,
    pub mode: KeyMode,
}

impl AuthConfig {
    /// Reads `AUTH_ISSUER`, `AUTH_AUDIENCE`, and one of `AUTH_JWKS_URL`,
    /// `AUTH_HS256_SECRET` or `AUTH_DISABLED=true`. Without a JWKS URL or a
    /// secret, the JWKS is the issuer's well-known one (Cognito's layout).
    pub fn from_env(env: &Env) -> Result<AuthConfig, ConfigError> {
        Self::from_env_in(env, crate::config::in_lambda())
    }

    /// [`AuthConfig::from_env`] with the runtime named, so the rule is
    /// testable without the process environment. `AUTH_DISABLED` makes every
    /// caller an admin: a deployed function refuses it, and a stray one in a
    /// developer's shell loses to the verification settings `make dev` gives.
    pub fn from_env_in(env: &Env, in_lambda: bool) -> Result<AuthConfig, ConfigError> {
        let disabled = env.flag("AUTH_DISABLED", false)?;
        let explicit = env.get("AUTH_HS256_SECRET").is_some() || env.get("AUTH_JWKS_URL").is_some();
        if disabled && explicit {
            tracing::warn!("AUTH_DISABLED is ignored: token verification is configured");
        } else if disabled && in_lambda {
            return Err(ConfigError::Rule(
                "AUTH_DISABLED is for local use only and is refused in Lambda".into(),
            ));
        } else if disabled {
            return Ok(AuthConfig {
                issuer: String::new(),
                audience: String::new(),
                mode: KeyMode::Disabled,
            });
        }
        let issuer = env.require("AUTH_ISSUER")?;
        let audience = env.require("AUTH_AUDIENCE")?;
        let mode = if env.get("AUTH_HS256_SECRET").is_some() {
            KeyMode::Hs256 {
                secret: env
                    .require_secret("AUTH_HS256_SECRET", 32)?
                    .expose()
                    .as_bytes()
                    .to_vec(),
            }
        } else {
            KeyMode::Rs256 {
                jwks_url: env.get("AUTH_JWKS_URL").unwrap_or_else(|| {
                    format!("{}/.well-known/jwks.json", issuer.trim_end_matches('/'))
                }),
            }
        };
        Ok(AuthConfig {
            issuer,
            audience,
            mode,
        })
    }
}

/// Where RS256 keys come from. The HTTP fetcher in production; tests may
/// serve a fixed set.
#[async_trait]
pub trait JwksFetcher: Send + Sync {
    async fn fetch(&self, url: &str) -> Result<JwkSet, String>;
}

/// Fetches a JWKS over HTTPS with a short timeout.
pub struct HttpJwks {
    client: reqwest::Client,
}

impl HttpJwks {
    pub fn new() -> HttpJwks {
        HttpJwks {
            client: crate::tls::http_client()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
        }
    }
}

impl Default for HttpJwks {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl JwksFetcher for HttpJwks {
    async fn fetch(&self, url: &str) -> Result<JwkSet, String> {
        let response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("{url} answered {}", response.status()));
        }
        response.json::<JwkSet>().await.map_err(|e| e.to_string())
    }
}

#[derive(Debug, Deserialize)]
struct Claims {
    sub: Option<String>,
    exp: i64,
    nbf: Option<i64>,
    #[serde(flatten)]
    audience: AudienceClaims,
    #[serde(rename = "cognito:username")]
    username: Option<String>,
    #[serde(rename = "cognito:groups", default)]
    groups: Vec<String>,
}

/// Who a token was issued to. Cognito's ID tokens name the app client in
/// `aud`, its access tokens in `client_id`, each with its `token_use`; a
/// token without `token_use` (local HS256) may match either.
#[derive(Debug, Deserialize)]
struct AudienceClaims {
    #[serde(default)]
    aud: Option<OneOrMany>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    token_use: Option<String>,
}

impl AudienceClaims {
    fn check(&self, audience: &str) -> Result<(), AuthError> {
        let by_aud = self.aud.as_ref().is_some_and(|a| a.contains(audience));
        let by_client = self.client_id.as_deref() == Some(audience);
        let ok = match self.token_use.as_deref() {
            None => by_aud || (self.aud.is_none() && by_client),
            Some("id") => by_aud,
            Some("access") => by_client,
            Some(other) => {
                return Err(AuthError::Invalid(format!(
                    "a token of use '{other}' is not accepted"
                )))
            }
        };
        if ok {
            Ok(())
        } else {
            Err(AuthError::Invalid(
                "the token is for another audience".into(),
            ))
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn contains(&self, want: &str) -> bool {
        match self {
            OneOrMany::One(s) => s == want,
            OneOrMany::Many(v) => v.iter().any(|s| s == want),
        }
    }
}

struct CachedKeys {
    keys: JwkSet,
    fetched: Instant,
}

/// The last keys fetched and the last failure to fetch them.
#[derive(Default)]
struct KeyCache {
    keys: Option<CachedKeys>,
    failed: Option<(Instant, String)>,
}

impl KeyCache {
    /// The answer for `kid` at `now` without fetching, or `None` when a fetch
    /// is due.
    fn answer(&self, kid: &str, now: Instant) -> Option<Result<DecodingKey, AuthError>> {
        let age = |t: Instant| now.saturating_duration_since(t);
        let found = self.keys.as_ref().and_then(|c| c.keys.find(kid));
        if let Some(c) = &self.keys {
            match found {
                Some(jwk) if age(c.fetched) < JWKS_TTL => return Some(decoding_key(jwk)),
                None if age(c.fetched) < JWKS_REFRESH_MIN_INTERVAL => {
                    return Some(Err(unknown_kid(kid)))
                }
                _ => {}
            }
        }
        match &self.failed {
            Some((at, error)) if age(*at) < JWKS_FAILURE_BACKOFF => {
                Some(self.without_fetch(kid, now, error))
            }
            _ => None,
        }
    }

    /// When the issuer cannot be asked: keys held for `kid` (even past their
    /// TTL), a 401 for a kid that fresh keys do not know, else a 503.
    fn without_fetch(
        &self,
        kid: &str,
        now: Instant,
        error: &str,
    ) -> Result<DecodingKey, AuthError> {
        match &self.keys {
            Some(c) => match c.keys.find(kid) {
                Some(jwk) => decoding_key(jwk),
                None if now.saturating_duration_since(c.fetched) < JWKS_TTL => {
                    Err(unknown_kid(kid))
                }
                None => Err(AuthError::KeysUnavailable(error.to_string())),
            },
            None => Err(AuthError::KeysUnavailable(error.to_string())),
        }
    }
}

fn decoding_key(jwk: &jsonwebtoken::jwk::Jwk) -> Result<DecodingKey, AuthError> {
    DecodingKey::from_jwk(jwk).map_err(|e| AuthError::Invalid(e.to_string()))
}

fn unknown_kid(kid: &str) -> AuthError {
    AuthError::Invalid(format!("unknown key id '{kid}'"))
}

/// Verifies bearer tokens. Built once per process; the JWKS is fetched on
/// first use and cached for [`JWKS_TTL`].
pub struct Verifier {
    config: AuthConfig,
    fetcher: Box<dyn JwksFetcher>,
    keys: RwLock<KeyCache>,
    clock: Box<dyn Fn() -> Instant + Send + Sync>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("config", &self.config)
            .finish()
    }
}

impl Verifier {
    pub fn new(config: AuthConfig) -> Verifier {
        Self::with_fetcher(config, Box::new(HttpJwks::new()))
    }

    pub fn with_fetcher(config: AuthConfig, fetcher: Box<dyn JwksFetcher>) -> Verifier {
        Verifier {
            config,
            fetcher,
            keys: RwLock::new(KeyCache::default()),
            clock: Box::new(Instant::now),
        }
    }

    /// Replaces the monotonic clock the key cache ages by (tests).
    pub fn with_clock(mut self, clock: impl Fn() -> Instant + Send + Sync + 'static) -> Self {
        self.clock = Box::new(clock);
        self
    }

    /// The caller named by an API Gateway authorizer's claims, held to the
    /// audience and `token_use` rules of [`Verifier::verify`]: the authorizer
    /// vouches for the signature, not that the token was issued to us (a
    /// user pool serves several app clients).
    pub fn authorizer_identity(&self, claims: &serde_json::Value) -> Result<Identity, AuthError> {
        let audience: AudienceClaims = serde_json::from_value(claims.clone())
            .map_err(|e| AuthError::Invalid(format!("the authorizer's claims: {e}")))?;
        audience.check(&self.config.audience)?;
        Identity::from_authorizer_claims(claims)
            .ok_or_else(|| AuthError::Invalid("the authorizer's claims name no user".into()))
    }

    pub fn is_disabled(&self) -> bool {
        self.config.mode == KeyMode::Disabled
    }

    /// Verifies `token` and returns who it names. With auth disabled any
    /// caller, token or not, is a local admin.
    pub async fn verify(
        &self,
        token: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Identity, AuthError> {
        let local_admin = || Identity {
            user_id: "local".into(),
            roles: vec![Role::Admin],
            expires_at: None,
        };
        if self.is_disabled() {
            return Ok(local_admin());
        }
        let token = token
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::Missing)?;
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| AuthError::Invalid(e.to_string()))?;
        let (algorithm, key) = match &self.config.mode {
            KeyMode::Hs256 { secret } => (Algorithm::HS256, DecodingKey::from_secret(secret)),
            KeyMode::Rs256 { jwks_url } => {
                let kid = header
                    .kid
                    .as_deref()
                    .ok_or_else(|| AuthError::Invalid("the token names no key (kid)".into()))?;
                (Algorithm::RS256, self.rs256_key(jwks_url, kid).await?)
            }
            KeyMode::Disabled => return Ok(local_admin()),
        };
        // The algorithm is ours, never the token's: a token signed any other
        // way (including `none`) is refused before its signature is looked at.
        if header.alg != algorithm {
            return Err(AuthError::Invalid(format!(
                "algorithm {:?} is not accepted",
                header.alg
            )));
        }
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_required_spec_claims(&["exp", "iss"]);
        // Time and audience are checked below: time against `now`, audience
        // against `aud` or Cognito's `client_id`.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map_err(|e| AuthError::Invalid(e.to_string()))?
            .claims;
        let t = now.timestamp();
        if claims.exp + LEEWAY_SECONDS <= t {
            return Err(AuthError::Expired);
        }
        if claims.nbf.is_some_and(|nbf| nbf - LEEWAY_SECONDS > t) {
            return Err(AuthError::NotYetValid);
        }
        claims.audience.check(&self.config.audience)?;
        let user_id = claims
            .username
            .or(claims.sub)
            .ok_or_else(|| AuthError::Invalid("the token names no user".into()))?;
        Ok(Identity {
            user_id,
            roles: roles_of(&claims.groups),
            expires_at: DateTime::from_timestamp(claims.exp, 0),
        })
    }

    async fn rs256_key(&self, url: &str, kid: &str) -> Result<DecodingKey, AuthError> {
        if let Some(answer) = self.keys.read().await.answer(kid, (self.clock)()) {
            return answer;
        }
        let mut cache = self.keys.write().await;
        // Whoever held the lock before may have fetched, or failed to, in
        // the meantime: waiters then share that outcome instead of fetching.
        if let Some(answer) = cache.answer(kid, (self.clock)()) {
            return answer;
        }
        match self.fetcher.fetch(url).await {
            Ok(keys) => {
                let key = keys.find(kid).map(decoding_key);
                cache.keys = Some(CachedKeys {
                    keys,
                    fetched: (self.clock)(),
                });
                cache.failed = None;
                key.unwrap_or_else(|| Err(unknown_kid(kid)))
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not fetch the token issuer's keys");
                let now = (self.clock)();
                // Keys past their TTL still beat refusing everyone while the
                // issuer is unreachable.
                let answer = cache.without_fetch(kid, now, &e);
                cache.failed = Some((now, e));
                answer
            }
        }
    }
}

/// The claims of a token minted for local use (`make dev`, tests).
#[derive(Debug, Clone, Serialize)]
pub struct LocalClaims {
    pub sub: String,
    #[serde(rename = "cognito:username")]
    pub username: String,
    #[serde(rename = "cognito:groups")]
    pub groups: Vec<String>,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
}

impl LocalClaims {
    /// A token for `user` with `roles`, valid from `now` for `ttl`.
    pub fn new(
        config: &AuthConfig,
        user: &str,
        roles: &[Role],
        now: DateTime<Utc>,
        ttl: chrono::Duration,
    ) -> LocalClaims {
        LocalClaims {
            sub: user.into(),
            username: user.into(),
            groups: roles.iter().map(|r| r.as_str().to_string()).collect(),
            iss: config.issuer.clone(),
            aud: config.audience.clone(),
            iat: now.timestamp(),
            nbf: now.timestamp(),
            exp: (now + ttl).timestamp(),
        }
    }

    /// Signs with HS256 and `secret`.
    pub fn sign_hs256(&self, secret: &[u8]) -> crate::Result<String> {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            self,
            &EncodingKey::from_secret(secret),
        )
        .map_err(|e| crate::Error::Internal(format!("signing a token: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    const SECRET: &[u8] = b"a-local-secret-of-at-least-32-bytes!";

    fn config() -> AuthConfig {
        AuthConfig {
            issuer: "finops-local".into(),
            audience: "finops-lambda".into(),
            mode: KeyMode::Hs256 {
                secret: SECRET.to_vec(),
            },
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_790_000_000, 0).unwrap()
    }

    fn token(claims: &LocalClaims) -> String {
        claims.sign_hs256(SECRET).unwrap()
    }

    fn claims(roles: &[Role]) -> LocalClaims {
        LocalClaims::new(&config(), "alice", roles, now(), chrono::Duration::hours(1))
    }

    #[tokio::test]
    async fn a_valid_token_names_its_user_and_roles() {
        let v = Verifier::new(config());
        let id = v
            .verify(Some(&token(&claims(&[Role::Approver]))), now())
            .await
            .unwrap();
        assert_eq!(id.user_id, "alice");
        assert_eq!(id.roles, vec![Role::Approver]);
        assert!(id.has(Role::Operator) && !id.has(Role::Admin));
    }

    #[tokio::test]
    async fn missing_expired_early_foreign_and_tampered_tokens_are_refused() {
        let v = Verifier::new(config());
        assert_eq!(v.verify(None, now()).await, Err(AuthError::Missing));
        let t = token(&claims(&[Role::Viewer]));
        let later = now() + chrono::Duration::hours(2);
        assert_eq!(v.verify(Some(&t), later).await, Err(AuthError::Expired));
        let earlier = now() - chrono::Duration::hours(1);
        assert_eq!(
            v.verify(Some(&t), earlier).await,
            Err(AuthError::NotYetValid)
        );

        let mut other = claims(&[Role::Viewer]);
        other.aud = "someone-else".into();
        assert!(matches!(
            v.verify(Some(&token(&other)), now()).await,
            Err(AuthError::Invalid(_))
        ));
        let mut other = claims(&[Role::Viewer]);
        other.iss = "evil".into();
        assert!(matches!(
            v.verify(Some(&token(&other)), now()).await,
            Err(AuthError::Invalid(_))
        ));

        let wrong_key = claims(&[Role::Admin])
            .sign_hs256(b"another-secret-of-at-least-32-bytes!!")
            .unwrap();
        assert!(matches!(
            v.verify(Some(&wrong_key), now()).await,
            Err(AuthError::Invalid(_))
        ));
    }

    #[tokio::test]
    async fn alg_none_is_refused() {
        let v = Verifier::new(config());
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(&[Role::Admin])).unwrap());
        for t in [format!("{header}.{body}."), format!("{header}.{body}")] {
            assert!(matches!(
                v.verify(Some(&t), now()).await,
                Err(AuthError::Invalid(_))
            ));
        }
    }

    #[tokio::test]
    async fn disabled_auth_makes_everyone_a_local_admin() {
        let v = Verifier::new(
            AuthConfig::from_env(&Env::from_pairs(&[("AUTH_DISABLED", "true")])).unwrap(),
        );
        let id = v.verify(None, now()).await.unwrap();
        assert!(id.has(Role::Admin));
    }

    #[test]
    fn disabled_auth_is_refused_in_lambda_and_loses_to_explicit_settings() {
        let disabled = Env::from_pairs(&[("AUTH_DISABLED", "true")]);
        assert!(matches!(
            AuthConfig::from_env_in(&disabled, true),
            Err(ConfigError::Rule(_))
        ));
        assert_eq!(
            AuthConfig::from_env_in(&disabled, false).unwrap().mode,
            KeyMode::Disabled
        );
        let base = [
            ("AUTH_DISABLED", "true"),
            ("AUTH_ISSUER", "finops-local"),
            ("AUTH_AUDIENCE", "finops-lambda"),
        ];
        let hs = Env::from_pairs(&base)
            .with(&[("AUTH_HS256_SECRET", "a-local-secret-of-at-least-32-bytes!")]);
        let jwks = Env::from_pairs(&base).with(&[("AUTH_JWKS_URL", "https://issuer/jwks.json")]);
        for in_lambda in [false, true] {
            assert!(matches!(
                AuthConfig::from_env_in(&hs, in_lambda).unwrap().mode,
                KeyMode::Hs256 { .. }
            ));
            assert_eq!(
                AuthConfig::from_env_in(&jwks, in_lambda).unwrap().mode,
                KeyMode::Rs256 {
                    jwks_url: "https://issuer/jwks.json".into()
                }
            );
        }
    }

    #[test]
    fn config_derives_the_cognito_jwks_url_and_refuses_short_secrets() {
        let pairs = [
            (
                "AUTH_ISSUER",
                "https://cognito-idp.eu-west-1.amazonaws.com/pool/",
            ),
            ("AUTH_AUDIENCE", "client"),
        ];
        let c = AuthConfig::from_env(&Env::from_pairs(&pairs)).unwrap();
        assert_eq!(
            c.mode,
            KeyMode::Rs256 {
                jwks_url: "https://cognito-idp.eu-west-1.amazonaws.com/pool/.well-known/jwks.json"
                    .into()
            }
        );
        let short = Env::from_pairs(&pairs).with(&[("AUTH_HS256_SECRET", "short")]);
        assert!(AuthConfig::from_env(&short).is_err());
        assert!(AuthConfig::from_env(&Env::from_pairs::<&str, &str>(&[])).is_err());
    }

    #[test]
    fn authorizer_claims_accept_every_group_shape() {
        for groups in [
            serde_json::json!(["approver", "viewer"]),
            serde_json::json!("[approver viewer]"),
            serde_json::json!("approver,viewer"),
            serde_json::json!("[\"approver\",\"viewer\"]"),
        ] {
            let claims =
                serde_json::json!({"sub": "u1", "cognito:groups": groups, "exp": "1790000000"});
            let id = Identity::from_authorizer_claims(&claims).unwrap();
            assert_eq!(id.user_id, "u1");
            assert_eq!(id.roles, vec![Role::Viewer, Role::Approver]);
            assert_eq!(id.expires_at, Some(now()));
        }
        assert!(Identity::from_authorizer_claims(&serde_json::json!({})).is_none());
    }

    #[test]
    fn authorizer_claims_of_another_audience_or_token_use_are_refused() {
        let v = Verifier::new(config());
        let ok = [
            serde_json::json!({"sub": "u1", "aud": "finops-lambda", "token_use": "id"}),
            serde_json::json!({"sub": "u1", "client_id": "finops-lambda", "token_use": "access"}),
            serde_json::json!({"sub": "u1", "aud": ["x", "finops-lambda"]}),
        ];
        for claims in ok {
            assert_eq!(
                v.authorizer_identity(&claims).unwrap().user_id,
                "u1",
                "{claims}"
            );
        }
        let refused = [
            serde_json::json!({"sub": "u1"}),
            serde_json::json!({"sub": "u1", "aud": "someone-else", "token_use": "id"}),
            serde_json::json!({"sub": "u1", "client_id": "someone-else", "token_use": "access"}),
            // An ID token's audience is `aud`, an access token's `client_id`.
            serde_json::json!({"sub": "u1", "client_id": "finops-lambda", "token_use": "id"}),
            serde_json::json!({"sub": "u1", "aud": "finops-lambda", "token_use": "access"}),
            serde_json::json!({"sub": "u1", "aud": "finops-lambda", "token_use": "refresh"}),
        ];
        for claims in refused {
            assert!(
                matches!(v.authorizer_identity(&claims), Err(AuthError::Invalid(_))),
                "{claims}"
            );
        }
    }

    #[tokio::test]
    async fn tokens_of_another_token_use_are_refused() {
        let v = Verifier::new(config());
        #[derive(Serialize)]
        struct WithUse {
            #[serde(flatten)]
            base: LocalClaims,
            token_use: &'static str,
        }
        let sign = |token_use| {
            jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &WithUse {
                    base: claims(&[Role::Viewer]),
                    token_use,
                },
                &EncodingKey::from_secret(SECRET),
            )
            .unwrap()
        };
        assert!(v.verify(Some(&sign("id")), now()).await.is_ok());
        for bad in ["access", "refresh"] {
            assert!(
                matches!(
                    v.verify(Some(&sign(bad)), now()).await,
                    Err(AuthError::Invalid(_))
                ),
                "{bad}"
            );
        }
    }

    struct FixedJwks(std::sync::Arc<std::sync::atomic::AtomicUsize>);

    #[async_trait]
    impl JwksFetcher for FixedJwks {
        async fn fetch(&self, _url: &str) -> Result<JwkSet, String> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            serde_json::from_str(include_str!("../tests/fixtures/rs256-test-jwks.json"))
                .map_err(|e| e.to_string())
        }
    }

    /// A JWKS endpoint that counts its calls and fails while told to.
    #[derive(Clone, Default)]
    struct FlakyJwks {
        calls: std::sync::Arc<std::sync::atomic::AtomicUsize>,
        failing: std::sync::Arc<std::sync::atomic::AtomicBool>,
    }

    impl FlakyJwks {
        fn calls(&self) -> usize {
            self.calls.load(std::sync::atomic::Ordering::SeqCst)
        }
        fn fail(&self, yes: bool) {
            self.failing.store(yes, std::sync::atomic::Ordering::SeqCst)
        }
    }

    #[async_trait]
    impl JwksFetcher for FlakyJwks {
        async fn fetch(&self, _url: &str) -> Result<JwkSet, String> {
            self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
                return Err("connection refused".into());
            }
            serde_json::from_str(include_str!("../tests/fixtures/rs256-test-jwks.json"))
                .map_err(|e| e.to_string())
        }
    }

    /// A verifier over `jwks` whose key-cache clock the test moves (seconds).
    fn rs256_verifier(
        jwks: &FlakyJwks,
    ) -> (Verifier, std::sync::Arc<std::sync::atomic::AtomicU64>) {
        let config = AuthConfig {
            mode: KeyMode::Rs256 {
                jwks_url: "http://127.0.0.1:9/jwks.json".into(),
            },
            ..config()
        };
        let offset = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let base = Instant::now();
        let at = offset.clone();
        let v = Verifier::with_fetcher(config, Box::new(jwks.clone())).with_clock(move || {
            base + Duration::from_secs(at.load(std::sync::atomic::Ordering::SeqCst))
        });
        (v, offset)
    }

    fn set(offset: &std::sync::atomic::AtomicU64, seconds: u64) {
        offset.store(seconds, std::sync::atomic::Ordering::SeqCst)
    }

    #[tokio::test]
    async fn cached_keys_expire_and_unknown_kids_refetch_at_most_every_30_s() {
        let jwks = FlakyJwks::default();
        let (v, clock) = rs256_verifier(&jwks);
        let good = rs256(&claims(&[Role::Admin]), "test-key-1");
        let unknown = rs256(&claims(&[Role::Admin]), "rotated-key");
        assert!(v.verify(Some(&good), now()).await.is_ok());
        set(&clock, 59 * 60);
        assert!(v.verify(Some(&good), now()).await.is_ok());
        assert_eq!(jwks.calls(), 1, "fresh keys are not fetched again");
        set(&clock, 61 * 60);
        assert!(v.verify(Some(&good), now()).await.is_ok());
        assert_eq!(
            jwks.calls(),
            2,
            "keys older than their TTL are fetched again"
        );
        // A kid not in the set: one refetch per 30 s at most.
        set(&clock, 61 * 60 + 10);
        for _ in 0..5 {
            assert!(matches!(
                v.verify(Some(&unknown), now()).await,
                Err(AuthError::Invalid(_))
            ));
        }
        assert_eq!(jwks.calls(), 2);
        set(&clock, 61 * 60 + 31);
        for _ in 0..5 {
            assert!(v.verify(Some(&unknown), now()).await.is_err());
        }
        assert_eq!(jwks.calls(), 3);
    }

    #[tokio::test]
    async fn a_failed_jwks_fetch_fails_fast_for_a_while_instead_of_refetching() {
        let jwks = FlakyJwks::default();
        jwks.fail(true);
        let (v, clock) = rs256_verifier(&jwks);
        let v = std::sync::Arc::new(v);
        let good = rs256(&claims(&[Role::Admin]), "test-key-1");
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (v, good) = (v.clone(), good.clone());
                tokio::spawn(async move { v.verify(Some(&good), now()).await })
            })
            .collect();
        for t in tasks {
            assert!(matches!(
                t.await.unwrap(),
                Err(AuthError::KeysUnavailable(_))
            ));
        }
        assert_eq!(jwks.calls(), 1, "one fetch for the whole burst");
        set(&clock, 5);
        assert!(matches!(
            v.verify(Some(&good), now()).await,
            Err(AuthError::KeysUnavailable(_))
        ));
        assert_eq!(jwks.calls(), 1, "still within the backoff");
        // After the backoff the issuer is asked again, and recovers.
        jwks.fail(false);
        set(&clock, 11);
        assert!(v.verify(Some(&good), now()).await.is_ok());
        assert_eq!(jwks.calls(), 2);
        // With fresh keys, an unknown kid is the token's fault (401) even
        // while the issuer is unreachable.
        jwks.fail(true);
        set(&clock, 11 + 31);
        let unknown = rs256(&claims(&[Role::Admin]), "rotated-key");
        assert!(matches!(
            v.verify(Some(&unknown), now()).await,
            Err(AuthError::Invalid(_))
        ));
        assert_eq!(jwks.calls(), 3);
        // Expired keys whose refresh fails keep serving the kids they hold
        // (the backoff has passed).
        set(&clock, 11 + 3_601);
        assert!(v.verify(Some(&good), now()).await.is_ok());
        assert!(v.verify(Some(&good), now()).await.is_ok());
        assert_eq!(jwks.calls(), 4, "one failed refresh, then the backoff");
    }

    fn rs256(claims: &LocalClaims, kid: &str) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.into());
        let key = EncodingKey::from_rsa_pem(include_bytes!("../tests/fixtures/rs256-test-key.pem"))
            .unwrap();
        jsonwebtoken::encode(&header, claims, &key).unwrap()
    }

    #[tokio::test]
    async fn rs256_tokens_verify_against_a_jwks_fetched_once() {
        let fetches = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let config = AuthConfig {
            mode: KeyMode::Rs256 {
                jwks_url: "http://127.0.0.1:9/jwks.json".into(),
            },
            ..config()
        };
        let v = Verifier::with_fetcher(config, Box::new(FixedJwks(fetches.clone())));
        let good = rs256(&claims(&[Role::Admin]), "test-key-1");
        for _ in 0..3 {
            let id = v.verify(Some(&good), now()).await.unwrap();
            assert_eq!(id.roles, vec![Role::Admin]);
        }
        assert_eq!(fetches.load(std::sync::atomic::Ordering::SeqCst), 1);
        // An unknown kid right after a fetch does not fetch again.
        let unknown = rs256(&claims(&[Role::Admin]), "other-key");
        assert!(matches!(
            v.verify(Some(&unknown), now()).await,
            Err(AuthError::Invalid(_))
        ));
        assert_eq!(fetches.load(std::sync::atomic::Ordering::SeqCst), 1);
        // An HS256 token is refused by an RS256 verifier, whatever its key.
        let hs = token(&claims(&[Role::Admin]));
        assert!(matches!(
            v.verify(Some(&hs), now()).await,
            Err(AuthError::Invalid(_))
        ));
    }
}
