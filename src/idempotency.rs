//! Idempotency keys.

/// Checks an idempotency key: 1 to 255 visible ASCII characters (`!` to `~`).
///
/// ```
/// assert!(tokportal::idempotency::validate_key(b"bundle-create-123").is_ok());
/// assert!(tokportal::idempotency::validate_key(b"has space").is_err());
/// assert!(tokportal::idempotency::validate_key(b"").is_err());
/// ```
pub fn validate_key(key: &[u8]) -> Result<(), String> {
    validate_token("an idempotency key", key)
}

/// Checks a request id (`X-Request-ID`): the same rule as an idempotency key.
///
/// ```
/// let err = tokportal::idempotency::validate_request_id(b"").unwrap_err();
/// assert_eq!(err, "a request id must not be empty");
/// ```
pub fn validate_request_id(id: &[u8]) -> Result<(), String> {
    validate_token("a request id", id)
}

/// 1 to 255 visible ASCII characters; `what` names the value in the message.
fn validate_token(what: &str, value: &[u8]) -> Result<(), String> {
    if value.is_empty() {
        return Err(format!("{what} must not be empty"));
    }
    if value.len() > 255 {
        return Err(format!(
            "{what} is at most 255 characters, this one has {}",
            value.len()
        ));
    }
    if let Some(pos) = value.iter().position(|b| !(0x21..=0x7e).contains(b)) {
        return Err(format!(
            "{what} holds visible ASCII characters only; byte {pos} is not one"
        ));
    }
    Ok(())
}

/// A fresh random key (UUID v4), as the client generates for retried calls.
pub fn generate_key() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        assert!(validate_key(&[b'a'; 255]).is_ok());
        assert!(validate_key(&[b'a'; 256]).is_err());
        assert!(validate_key("é".as_bytes()).is_err());
        assert!(validate_key(b"tab\t").is_err());
        assert!(validate_key(generate_key().as_bytes()).is_ok());
    }

    /// A request id is refused as a key is, and the message says which.
    #[test]
    fn request_ids_are_checked() {
        assert!(validate_request_id(b"req_7dcd0fbc").is_ok());
        assert_eq!(validate_request_id(b"").unwrap_err(), "a request id must not be empty");
        assert_eq!(
            validate_request_id(b"req 1").unwrap_err(),
            "a request id holds visible ASCII characters only; byte 3 is not one"
        );
        assert_eq!(
            validate_request_id(&[b'r'; 256]).unwrap_err(),
            "a request id is at most 255 characters, this one has 256"
        );
        assert!(validate_key(b"").unwrap_err().starts_with("an idempotency key"));
    }

    /// Generated keys are UUID v4 and never repeat: a retried create reuses
    /// its own key, and two creates never share one.
    #[test]
    fn generated_keys_are_fresh_uuids() {
        let keys: std::collections::HashSet<String> = (0..64).map(|_| generate_key()).collect();
        assert_eq!(keys.len(), 64);
        for key in &keys {
            let uuid = uuid::Uuid::parse_str(key).unwrap();
            assert_eq!(uuid.get_version_num(), 4, "{key}");
            assert_eq!(key.len(), 36, "{key}");
        }
    }
}
