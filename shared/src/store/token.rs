use crate::{Error, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{de::DeserializeOwned, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

const TAG_LEN: usize = 16;

/// Encodes listing positions as opaque tokens: base64url(payload || tag),
/// where tag is a truncated HMAC-SHA256 over the listing's scope and the
/// payload. A token from another listing, or altered in any byte, is refused
/// as a validation error instead of reaching DynamoDB.
#[derive(Clone)]
pub struct PageTokenCodec {
    key: Vec<u8>,
}

impl std::fmt::Debug for PageTokenCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PageTokenCodec(..)")
    }
}

impl PageTokenCodec {
    pub fn new(key: impl AsRef<[u8]>) -> Self {
        PageTokenCodec {
            key: key.as_ref().to_vec(),
        }
    }

    fn mac(&self, scope: &str, payload: &[u8]) -> HmacSha256 {
        // new_from_slice accepts keys of any length for HMAC.
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(scope.as_bytes());
        mac.update(&[0]);
        mac.update(payload);
        mac
    }

    pub fn encode<T: Serialize>(&self, scope: &str, position: &T) -> Result<String> {
        let payload = serde_json::to_vec(position)?;
        let tag = self.mac(scope, &payload).finalize().into_bytes();
        let mut raw = payload;
        raw.extend_from_slice(&tag[..TAG_LEN]);
        Ok(URL_SAFE_NO_PAD.encode(raw))
    }

    pub fn decode<T: DeserializeOwned>(&self, scope: &str, token: &str) -> Result<T> {
        let invalid = || Error::Validation("nextToken is not a token this listing issued".into());
        if token.len() > 4096 {
            return Err(invalid());
        }
        let raw = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
        if raw.len() <= TAG_LEN {
            return Err(invalid());
        }
        let (payload, tag) = raw.split_at(raw.len() - TAG_LEN);
        self.mac(scope, payload)
            .verify_truncated_left(tag)
            .map_err(|_| invalid())?;
        serde_json::from_slice(payload).map_err(|_| invalid())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trips_and_binds_scope() {
        let c = PageTokenCodec::new("k");
        let t = c.encode("jobs", &("a", 1)).unwrap();
        let back: (String, i32) = c.decode("jobs", &t).unwrap();
        assert_eq!(back, ("a".to_string(), 1));
        assert!(matches!(
            c.decode::<(String, i32)>("audit", &t),
            Err(Error::Validation(_))
        ));
        assert!(matches!(
            PageTokenCodec::new("other").decode::<(String, i32)>("jobs", &t),
            Err(Error::Validation(_))
        ));
    }

    proptest! {
        #[test]
        fn any_single_byte_change_is_refused(pos in 0usize..64, delta in 1u8..=255) {
            let c = PageTokenCodec::new("secret");
            let token = c.encode("scope", &serde_json::json!({"pk": "x", "sk": 42})).unwrap();
            let mut raw = URL_SAFE_NO_PAD.decode(&token).unwrap();
            let i = pos % raw.len();
            raw[i] = raw[i].wrapping_add(delta);
            let tampered = URL_SAFE_NO_PAD.encode(raw);
            prop_assert!(c.decode::<serde_json::Value>("scope", &tampered).is_err());
        }

        #[test]
        fn garbage_is_a_validation_error(s in ".{0,200}") {
            let c = PageTokenCodec::new("secret");
            let r = c.decode::<serde_json::Value>("scope", &s);
            prop_assert!(matches!(r, Err(Error::Validation(_))));
        }
    }
}
