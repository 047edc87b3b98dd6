//! Everything the authorization server hands out is sealed: client ids,
//! codes, access and refresh tokens and the consent form's CSRF token are
//! PASETO `v4.local` tokens (XChaCha20 and BLAKE2b, authenticated, their
//! claims unreadable without the key), under one key derived from
//! `TOKPORTAL_MCP_OAUTH_SECRET`. Each kind is bound to its purpose and to
//! its issuer (the public URL) by PASETO's implicit assertion, so a code
//! never passes as a token, nor a client id as a code, and two deployments
//! that share a secret (staging and production) open none of each other's.
//! Replicas of one deployment open each other's; what must be used once is
//! the store's (`crate::mcp::store`).

use std::time::Duration;

use pasetors::claims::{Claims, ClaimsValidationRules};
use pasetors::keys::SymmetricKey;
use pasetors::token::UntrustedToken;
use pasetors::version4::V4;
use pasetors::{Local, local};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The longest token this server opens: anything longer is refused unread.
pub(crate) const MAX_TOKEN: usize = 8 * 1024;

/// The shortest secret accepted.
pub(crate) const MIN_SECRET: usize = 32;

/// What a sealed value is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// A registered client's id (its name and redirect URIs).
    Client,
    /// An authorization code.
    Code,
    /// An access token.
    Access,
    /// A refresh token.
    Refresh,
    /// The consent form's CSRF token (the authorization request it answers).
    Consent,
}

impl Purpose {
    fn name(self) -> &'static [u8] {
        match self {
            Purpose::Client => b"tokportal-mcp/oauth/client",
            Purpose::Code => b"tokportal-mcp/oauth/code",
            Purpose::Access => b"tokportal-mcp/oauth/access",
            Purpose::Refresh => b"tokportal-mcp/oauth/refresh",
            Purpose::Consent => b"tokportal-mcp/oauth/consent",
        }
    }
}

/// Seals and opens.
pub(crate) struct Sealer {
    key: SymmetricKey<V4>,
    /// The issuer every value is bound to.
    issuer: String,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(** redacted)")
    }
}

impl Sealer {
    /// The sealer of `secret` (at least [`MIN_SECRET`] bytes) for
    /// `issuer`'s values.
    pub(crate) fn new(secret: &str, issuer: &str) -> Result<Self, String> {
        let secret = secret.trim();
        if secret.len() < MIN_SECRET {
            return Err(format!(
                "the OAuth secret has {} bytes; it needs at least {MIN_SECRET} (openssl rand -hex 32)",
                secret.len()
            ));
        }
        let derived = Sha256::new()
            .chain_update(b"tokportal-mcp oauth sealing key v1\0")
            .chain_update(secret.as_bytes())
            .finalize();
        let key = SymmetricKey::<V4>::from(&derived).map_err(|e| format!("the OAuth key: {e}"))?;
        Ok(Self {
            key,
            issuer: issuer.to_owned(),
        })
    }

    /// The implicit assertion of `purpose`'s values: the purpose, then the
    /// issuer.
    fn assertion(&self, purpose: Purpose) -> Vec<u8> {
        let mut assertion = purpose.name().to_vec();
        assertion.push(0);
        assertion.extend_from_slice(self.issuer.as_bytes());
        assertion
    }

    /// Seals `claims` for `purpose`, for `ttl` (none: no expiry), for `audience`.
    pub(crate) fn seal(
        &self,
        purpose: Purpose,
        claims: Map<String, Value>,
        ttl: Option<Duration>,
        audience: Option<&str>,
    ) -> Result<String, String> {
        let mut sealed = Claims::new().map_err(|e| e.to_string())?;
        match ttl {
            Some(ttl) => sealed.set_expires_in(&ttl).map_err(|e| e.to_string())?,
            None => sealed.non_expiring(),
        }
        if let Some(audience) = audience {
            sealed.audience(audience).map_err(|e| e.to_string())?;
        }
        sealed
            .token_identifier(&uuid::Uuid::new_v4().to_string())
            .map_err(|e| e.to_string())?;
        for (name, value) in claims {
            sealed.add_additional(&name, value).map_err(|e| e.to_string())?;
        }
        local::encrypt(&self.key, &sealed, None, Some(&self.assertion(purpose))).map_err(|e| e.to_string())
    }

    /// Opens a token sealed for `purpose` (and `audience`), unexpired: its
    /// claims, or why not (a reason for logs and errors, never the token).
    pub(crate) fn open(
        &self,
        purpose: Purpose,
        token: &str,
        audience: Option<&str>,
    ) -> Result<Map<String, Value>, &'static str> {
        if token.len() > MAX_TOKEN {
            return Err("too long");
        }
        let untrusted = UntrustedToken::<Local, V4>::try_from(token).map_err(|_| "not a token of this server")?;
        let mut rules = ClaimsValidationRules::new();
        if purpose == Purpose::Client {
            rules.allow_non_expiring();
        }
        if let Some(audience) = audience {
            rules.validate_audience_with(audience);
        }
        let trusted = local::decrypt(&self.key, &untrusted, &rules, None, Some(&self.assertion(purpose))).map_err(
            |e| match e {
                pasetors::errors::Error::ClaimValidation(pasetors::errors::ClaimValidationError::Exp) => "expired",
                pasetors::errors::Error::ClaimValidation(pasetors::errors::ClaimValidationError::Aud) => {
                    "issued for another resource"
                }
                pasetors::errors::Error::ClaimValidation(_) => "not valid now",
                _ => "not a token of this server, or not of this kind",
            },
        )?;
        let claims = trusted.payload_claims().ok_or("no claims")?;
        let text = claims.to_string().map_err(|_| "unreadable claims")?;
        match serde_json::from_str(&text) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err("unreadable claims"),
        }
    }
}

/// A claim as text.
pub(crate) fn text<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    claims.get(name).and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sealer() -> Sealer {
        Sealer::new("a test secret of at least thirty-two bytes", "https://a").unwrap()
    }

    fn claims() -> Map<String, Value> {
        json!({"k": "sk_test_x"}).as_object().unwrap().clone()
    }

    #[test]
    fn a_sealed_value_opens_only_for_its_purpose_and_audience() {
        let s = sealer();
        let token = s
            .seal(
                Purpose::Access,
                claims(),
                Some(Duration::from_secs(60)),
                Some("https://a/mcp"),
            )
            .unwrap();
        assert!(
            token.starts_with("v4.local.") && !token.contains("sk_test_x"),
            "the key is not readable"
        );
        assert_eq!(
            text(&s.open(Purpose::Access, &token, Some("https://a/mcp")).unwrap(), "k"),
            Some("sk_test_x")
        );
        assert_eq!(
            s.open(Purpose::Access, &token, Some("https://b/mcp")).unwrap_err(),
            "issued for another resource"
        );
        assert!(s.open(Purpose::Code, &token, None).is_err(), "a token is no code");
        let other = Sealer::new("another secret, also thirty-two bytes long", "https://a").unwrap();
        assert!(
            other.open(Purpose::Access, &token, Some("https://a/mcp")).is_err(),
            "another secret"
        );
        // Staging and production with one secret: neither opens the other's.
        let staging = Sealer::new("a test secret of at least thirty-two bytes", "https://staging.a").unwrap();
        for purpose in [
            Purpose::Client,
            Purpose::Code,
            Purpose::Access,
            Purpose::Refresh,
            Purpose::Consent,
        ] {
            let theirs = staging
                .seal(purpose, claims(), Some(Duration::from_secs(60)), None)
                .unwrap();
            assert_eq!(
                s.open(purpose, &theirs, None).unwrap_err(),
                "not a token of this server, or not of this kind",
                "{purpose:?}"
            );
            assert!(staging.open(purpose, &theirs, None).is_ok(), "{purpose:?}");
        }
    }

    /// The length bound is 8 KiB, exactly: a long client id (ten long
    /// redirect URIs) opens, one of exactly the bound is read, one over it
    /// is refused unread; and the key never shows in `Debug`.
    #[test]
    fn the_length_bound_is_exact_and_debug_shows_no_key() {
        let s = sealer();
        let mut long = Map::new();
        long.insert(
            "r".into(),
            json!(vec!["https://example.com/".to_owned() + &"a".repeat(300); 10]),
        );
        let token = s.seal(Purpose::Client, long, None, None).unwrap();
        assert!(token.len() > 2000 && token.len() < MAX_TOKEN, "{}", token.len());
        assert!(s.open(Purpose::Client, &token, None).is_ok());
        assert_ne!(
            s.open(Purpose::Client, &"x".repeat(MAX_TOKEN), None).unwrap_err(),
            "too long"
        );
        assert_eq!(
            s.open(Purpose::Client, &"x".repeat(MAX_TOKEN + 1), None).unwrap_err(),
            "too long"
        );
        assert_eq!(format!("{s:?}"), "Sealer(** redacted)");
    }

    #[test]
    fn an_expired_value_is_refused_and_short_secrets_too() {
        let s = sealer();
        let token = s
            .seal(Purpose::Code, claims(), Some(Duration::from_secs(1)), None)
            .unwrap();
        std::thread::sleep(Duration::from_millis(2100));
        assert_eq!(s.open(Purpose::Code, &token, None).unwrap_err(), "expired");
        assert!(Sealer::new("short", "https://a").unwrap_err().contains("at least 32"));
        let client = s.seal(Purpose::Client, claims(), None, None).unwrap();
        assert!(
            s.open(Purpose::Client, &client, None).is_ok(),
            "client ids do not expire"
        );
        assert_eq!(
            s.open(Purpose::Client, &"x".repeat(MAX_TOKEN + 1), None).unwrap_err(),
            "too long"
        );
    }
}
