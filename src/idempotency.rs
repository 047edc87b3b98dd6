//! Idempotency keys.

/// Checks an idempotency key: 1 to 255 visible ASCII characters (`!` to `~`).
///
/// ```
/// assert!(tokportal::idempotency::validate_key(b"bundle-create-123").is_ok());
/// assert!(tokportal::idempotency::validate_key(b"has space").is_err());
/// assert!(tokportal::idempotency::validate_key(b"").is_err());
/// ```
pub fn validate_key(key: &[u8]) -> Result<(), String> {
    if key.is_empty() {
        return Err("an idempotency key must not be empty".into());
    }
    if key.len() > 255 {
        return Err(format!(
            "an idempotency key is at most 255 characters, this one has {}",
            key.len()
        ));
    }
    if let Some(pos) = key.iter().position(|b| !(0x21..=0x7e).contains(b)) {
        return Err(format!(
            "an idempotency key holds visible ASCII characters only; byte {pos} is not one"
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
}
