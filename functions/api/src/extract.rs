//! Everything a handler is given, read from the request once: who is
//! calling, the path parameters, the query as a typed struct, the JSON body.
//! Each refuses bad input with the SPEC error before any handler runs.

use crate::app::App;
use crate::error::ApiError;
use chrono::{DateTime, Utc};
use lambda_http::{Body, Request, RequestExt};
use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::json;
use shared::auth::Identity;
use shared::domain::Role;
use std::fmt;

/// Largest request body accepted, in bytes (API Gateway's own limit is 10 MB).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Longest text a query parameter may carry: DynamoDB keys are at most
/// 2,048 bytes and attribute names 255, so longer values could only fail
/// further in.
const MAX_FILTER_BYTES: usize = 512;

// ---- identity and role ----

/// Who is calling, when the route needs a role: the authorizer's claims when
/// API Gateway ran one, otherwise the Bearer token, checked here.
pub async fn authorize(
    app: &App,
    req: &Request,
    role: Option<Role>,
) -> Result<Option<Identity>, ApiError> {
    let Some(role) = role else {
        return Ok(None);
    };
    let who = identify(app, req).await?;
    if !who.has(role) {
        return Err(ApiError::new(
            403,
            "forbidden",
            format!("this needs the {} role", role.as_str()),
        )
        .with_details(json!({ "required": role.as_str(), "roles": who.roles })));
    }
    Ok(Some(who))
}

async fn identify(app: &App, req: &Request) -> Result<Identity, ApiError> {
    if let Some(lambda_http::request::RequestContext::ApiGatewayV1(ctx)) = req.request_context_ref()
    {
        if let Some(claims) = ctx.authorizer.fields.get("claims") {
            // The authorizer checked the signature; the audience and the
            // token's use are checked here, by the rule tokens get.
            return Ok(app.verifier.authorizer_identity(claims)?);
        }
    }
    let header = req
        .headers()
        .get("authorization")
        .map(|v| {
            v.to_str().map_err(|_| {
                ApiError::new(401, "unauthorized", "the Authorization header is not text")
            })
        })
        .transpose()?;
    let token = match header {
        None => None,
        Some(h) => match h.split_once(' ') {
            Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") && !t.trim().is_empty() => {
                Some(t.trim())
            }
            _ => {
                return Err(ApiError::new(
                    401,
                    "unauthorized",
                    "the Authorization header must be 'Bearer <token>'",
                ))
            }
        },
    };
    Ok(app.verifier.verify(token, app.now()).await?)
}

// ---- path parameters ----

/// The route's path parameters, in the order the route names them.
pub struct PathParams(std::vec::IntoIter<String>);

impl PathParams {
    pub fn new(raw: Vec<String>) -> Self {
        PathParams(raw.into_iter())
    }

    /// The next parameter, percent-decoded.
    pub fn next(&mut self) -> Result<String, ApiError> {
        let raw = self.0.next().unwrap_or_default();
        let decoded = percent_decode(&raw)
            .ok_or_else(|| ApiError::bad_request("a path parameter is not valid UTF-8"))?;
        if decoded.is_empty() || decoded.len() > 512 {
            return Err(ApiError::bad_request(
                "a path parameter must be 1 to 512 characters",
            ));
        }
        Ok(decoded)
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

// ---- the JSON body ----

/// Parses the JSON body as `T`; an empty body is `{}` when `T` allows it.
pub fn body<T: DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    let bytes: &[u8] = match req.body() {
        Body::Empty => &[],
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    };
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::new(
            413,
            "payload_too_large",
            format!("the body is larger than {MAX_BODY_BYTES} bytes"),
        ));
    }
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::bad_request(format!("the body is not valid for this operation: {e}"))
    })
}

// ---- the query ----

/// A route that takes no query parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoQuery {}

/// Parses the query string as `T`, a struct of `Option` fields. A parameter
/// `T` does not name is refused, never ignored, so a misspelt filter cannot
/// silently widen a listing. Fields are read in the order `T` declares them,
/// so of two bad values the first declared is the one reported. An empty
/// value counts as absent; of a repeated parameter the first value counts.
pub fn query<T: DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    let q = req.query_string_parameters();
    for (k, v) in q.iter() {
        if v.len() > MAX_FILTER_BYTES && k != "nextToken" {
            return Err(ApiError::bad_request(format!(
                "{k} is longer than {MAX_FILTER_BYTES} bytes"
            )));
        }
    }
    // Checked here rather than in the one handler that filters by tag: a
    // key DynamoDB cannot hold is refused before the unknown-parameter check.
    if let Some(tag) = q.first("tag").filter(|t| !t.is_empty()) {
        let key = tag.split_once('=').map_or(tag, |(k, _)| k);
        if key.is_empty() || key.len() > 128 {
            return Err(ApiError::bad_request(
                "tag must be 'key' or 'key=value', the key 1 to 128 bytes",
            ));
        }
    }
    let known = field_names::<T>();
    let mut unknown: Vec<String> = q
        .iter()
        .map(|(k, _)| k)
        .filter(|k| !known.contains(k))
        .map(str::to_string)
        .collect();
    unknown.sort();
    unknown.dedup();
    if !unknown.is_empty() {
        return Err(ApiError::bad_request(format!(
            "unknown query parameter(s): {}; this operation takes: {}",
            unknown.join(", "),
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        ))
        .with_details(json!({ "unknown": unknown })));
    }
    let entries: Vec<(&'static str, String)> = known
        .iter()
        .filter_map(|k| q.first(k).map(|v| (*k, v.to_string())))
        .collect();
    T::deserialize(QueryDeserializer(entries.into_iter()))
        .map_err(|e| ApiError::bad_request(e.to_string()))
}

/// Field parsers for query structs, each used as
/// `#[serde(default, deserialize_with = "...")]` on an `Option` field. A
/// value refused with `invalid_value` is reported as
/// "<name> must be <expected>, got '<value>'".
pub mod field {
    use super::*;
    use serde::de::{Error as _, Unexpected};
    use std::str::FromStr;

    fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Option::<String>::deserialize(d)
    }

    /// A page size: 1 to 100.
    pub fn limit<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
        let Some(v) = text(d)? else { return Ok(None) };
        match v.parse::<u32>() {
            Ok(n) if (1..=100).contains(&n) => Ok(Some(n)),
            _ => Err(D::Error::invalid_value(
                Unexpected::Str(&v),
                &"an integer from 1 to 100",
            )),
        }
    }

    /// An RFC 3339 instant from 1970 to 9999 in UTC. An offset can carry a
    /// four-digit year past either end; the stores key by epoch seconds and
    /// fixed-width text, which only that range keeps in order, and handlers
    /// compute periods from it.
    pub fn time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        let Some(v) = text(d)? else { return Ok(None) };
        let range = DateTime::UNIX_EPOCH.timestamp()..=253_402_300_799; // 9999-12-31T23:59:59Z
        DateTime::parse_from_rfc3339(&v)
            .ok()
            .map(|t| t.with_timezone(&Utc))
            .filter(|t| range.contains(&t.timestamp()))
            .map(Some)
            .ok_or_else(|| {
                D::Error::invalid_value(
                    Unexpected::Str(&v),
                    &"an RFC 3339 time from 1970 to 9999 such as 2026-11-23T10:00:00Z",
                )
            })
    }

    /// Any type with `FromStr`, its error message as it words it.
    pub fn parsed<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: FromStr,
        T::Err: fmt::Display,
    {
        let Some(v) = text(d)? else { return Ok(None) };
        v.parse::<T>().map(Some).map_err(D::Error::custom)
    }
}

/// The field names serde gives `T` (after renames), read from what its
/// derived `Deserialize` passes to `deserialize_struct`.
fn field_names<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Names<'a>(&'a mut &'static [&'static str]);
    impl<'de> Deserializer<'de> for Names<'_> {
        type Error = QueryError;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, QueryError> {
            Err(de::Error::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, QueryError> {
            *self.0 = fields;
            Err(de::Error::custom("names read"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }
    let mut names: &'static [&'static str] = &[];
    let _ = T::deserialize(Names(&mut names));
    names
}

#[derive(Debug)]
enum QueryError {
    Message(String),
    /// A value refused by a field parser; worded once its name is known.
    Invalid {
        expected: String,
        got: String,
    },
}

impl QueryError {
    fn named(self, name: &str) -> QueryError {
        match self {
            QueryError::Invalid { expected, got } => {
                QueryError::Message(format!("{name} must be {expected}, got '{got}'"))
            }
            other => other,
        }
    }
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueryError::Message(m) => f.write_str(m),
            QueryError::Invalid { expected, got } => write!(f, "must be {expected}, got '{got}'"),
        }
    }
}

impl std::error::Error for QueryError {}

impl de::Error for QueryError {
    fn custom<M: fmt::Display>(msg: M) -> Self {
        QueryError::Message(msg.to_string())
    }

    fn invalid_value(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        let got = match unexp {
            de::Unexpected::Str(s) => s.to_string(),
            other => other.to_string(),
        };
        QueryError::Invalid {
            expected: exp.to_string(),
            got,
        }
    }
}

/// The query as a map of (name, value), in the order the struct declares.
struct QueryDeserializer(std::vec::IntoIter<(&'static str, String)>);

impl<'de> Deserializer<'de> for QueryDeserializer {
    type Error = QueryError;
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, QueryError> {
        visitor.visit_map(Entries {
            items: self.0,
            value: None,
        })
    }
    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

struct Entries {
    items: std::vec::IntoIter<(&'static str, String)>,
    value: Option<(&'static str, String)>,
}

impl<'de> de::MapAccess<'de> for Entries {
    type Error = QueryError;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, QueryError> {
        match self.items.next() {
            None => Ok(None),
            Some((name, value)) => {
                self.value = Some((name, value));
                seed.deserialize(name.into_deserializer()).map(Some)
            }
        }
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, QueryError> {
        let (name, value) = self
            .value
            .take()
            .ok_or_else(|| de::Error::custom("a query value was read before its name"))?;
        seed.deserialize(Text(value)).map_err(|e| e.named(name))
    }
}

/// One query value: text, and absent when empty.
struct Text(String);

impl<'de> Deserializer<'de> for Text {
    type Error = QueryError;
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, QueryError> {
        visitor.visit_string(self.0)
    }
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, QueryError> {
        if self.0.is_empty() {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }
    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct Q {
        #[serde(default, deserialize_with = "field::time")]
        from: Option<DateTime<Utc>>,
        #[serde(default, deserialize_with = "field::limit")]
        limit: Option<u32>,
        next_token: Option<String>,
        #[serde(default, deserialize_with = "field::parsed")]
        service: Option<shared::domain::Service>,
    }

    fn request(query: &str) -> Request {
        let mut multi = serde_json::Map::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            multi
                .entry(k.to_string())
                .or_insert_with(|| json!([]))
                .as_array_mut()
                .unwrap()
                .push(json!(v));
        }
        let event = json!({
            "resource": "/{proxy+}", "path": "/api/x", "httpMethod": "GET",
            "headers": {}, "multiValueHeaders": {},
            "queryStringParameters": null,
            "multiValueQueryStringParameters": multi,
            "pathParameters": null, "stageVariables": null,
            "requestContext": {"accountId": "1", "resourceId": "r", "stage": "prod",
                "requestId": "id", "identity": {}, "resourcePath": "/{proxy+}",
                "httpMethod": "GET", "apiId": "a", "path": "/prod/api/x"},
            "body": null, "isBase64Encoded": false
        });
        lambda_http::request::from_str(&event.to_string()).expect("a REST proxy event")
    }

    fn message(r: Result<Q, ApiError>) -> String {
        r.expect_err("refused").message
    }

    #[test]
    fn names_come_from_the_struct_after_renames() {
        assert_eq!(
            field_names::<Q>(),
            ["from", "limit", "nextToken", "service"]
        );
        assert!(field_names::<NoQuery>().is_empty());
    }

    #[test]
    fn values_parse_once_into_types() {
        let q: Q = query(&request(
            "limit=5&nextToken=abc&service=EC2&from=2026-11-23T10:00:00Z",
        ))
        .unwrap();
        assert_eq!(q.limit, Some(5));
        assert_eq!(q.next_token.as_deref(), Some("abc"));
        assert_eq!(q.service, Some(shared::domain::Service::Ec2));
        assert_eq!(q.from.unwrap().to_rfc3339(), "2026-11-23T10:00:00+00:00");
        let empty: Q = query(&request("limit=&nextToken=")).unwrap();
        assert_eq!(empty, query(&request("")).unwrap());
        assert_eq!(empty.limit, None);
    }

    #[test]
    fn unknown_parameters_are_refused_with_what_the_operation_takes() {
        let e = query::<Q>(&request("stauts=x&limit=2&zz=")).unwrap_err();
        assert_eq!((e.status, e.code), (400, "bad_request"));
        assert_eq!(
            e.message,
            "unknown query parameter(s): stauts, zz; this operation takes: from, limit, nextToken, service"
        );
        assert_eq!(e.details, Some(json!({ "unknown": ["stauts", "zz"] })));
        assert_eq!(
            query::<NoQuery>(&request("a=1")).unwrap_err().message,
            "unknown query parameter(s): a; this operation takes: none"
        );
    }

    #[test]
    fn bad_values_are_named() {
        assert_eq!(
            message(query(&request("limit=0"))),
            "limit must be an integer from 1 to 100, got '0'"
        );
        assert_eq!(
            message(query(&request("from=monday"))),
            "from must be an RFC 3339 time from 1970 to 9999 such as 2026-11-23T10:00:00Z, got 'monday'"
        );
        assert!(message(query(&request("service=ec3"))).starts_with("unknown service 'ec3'"));
        // The first field declared is the one reported.
        assert!(message(query(&request("service=ec3&from=x"))).starts_with("from "));
        let long = "x".repeat(513);
        assert_eq!(
            message(query(&request(&format!("service={long}")))),
            "service is longer than 512 bytes"
        );
        assert!(query::<Q>(&request(&format!("nextToken={long}"))).is_ok());
    }
}
