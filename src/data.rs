//! The `data` of an answer as the caller's own type. The contract types only
//! three success bodies; every other answer is a JSON object whose `data` a
//! caller can decode into a struct of their own, with a typed error.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::Error;

/// Decodes an answer's `data` (the whole body when it has none) into `U`.
///
/// The error copies nothing of the answer: the caller holds it already,
/// and it may be a secret (`revealAccountCredentials`' password, a
/// verification code, a webhook secret), so its `body` is empty and the
/// decoder's message keeps its words but not the values it quotes
/// ([`without_values`]).
pub(crate) fn data_as<U: DeserializeOwned>(body: &Value, status: u16) -> Result<U, Error> {
    let data = body.get("data").unwrap_or(body);
    U::deserialize(data).map_err(|e| {
        Error::decode(
            status,
            format!(
                "`data` is not a {}: {}",
                std::any::type_name::<U>(),
                without_values(&e.to_string())
            ),
            b"",
        )
    })
}

/// serde's message with every value it quotes replaced by `…`: `invalid
/// type: string "hunter2", expected u32` becomes `invalid type: string …,
/// expected u32`. A name in backticks after `field` (`missing field
/// `password``) is the type's, not the answer's, and is kept.
///
/// Hand-written: serde gives no structured form of its messages (its
/// `Unexpected` is gone once the message is made), and serde_json quotes a
/// string with Rust's escapes (`\"` inside), a number or variant in
/// backticks.
pub(crate) fn without_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut chars = message.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
                out.push('…');
            }
            '`' => {
                let name = out.ends_with("field ");
                let mut quoted = String::new();
                for c in chars.by_ref() {
                    if c == '`' {
                        break;
                    }
                    quoted.push(c);
                }
                if name {
                    out.push('`');
                    out.push_str(&quoted);
                    out.push('`');
                } else {
                    out.push('…');
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// `data` of a typed answer as your own type.
///
/// ```no_run
/// # async fn run(client: tokportal::Client) -> Result<(), tokportal::Error> {
/// use tokportal::ResponseData;
/// #[derive(serde::Deserialize)]
/// struct Bundle { id: String, status: String }
/// let bundle: Bundle = client.get_bundle().id(uuid::Uuid::nil()).send().await?.data_as()?;
/// println!("{} is {}", bundle.id, bundle.status);
/// # Ok(()) }
/// ```
pub trait ResponseData {
    /// The answer's `data` decoded into `U` ([`Error::Decode`] when it does not fit).
    fn data_as<U: DeserializeOwned>(&self) -> Result<U, Error>;
}

impl<T: Serialize> ResponseData for progenitor_client::ResponseValue<T> {
    fn data_as<U: DeserializeOwned>(&self) -> Result<U, Error> {
        let status = self.status().as_u16();
        let body = serde_json::to_value(&**self).map_err(|e| Error::decode(status, e, b""))?;
        data_as(&body, status)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn values_leave_the_message_and_names_stay() {
        assert_eq!(
            without_values(r#"invalid type: string "hun\"ter2", expected u32"#),
            "invalid type: string …, expected u32"
        );
        assert_eq!(
            without_values("invalid type: integer `123456`, expected a string"),
            "invalid type: integer …, expected a string"
        );
        assert_eq!(
            without_values("unknown variant `s3cr3t`, expected `a` or `b`"),
            "unknown variant …, expected … or …"
        );
        assert_eq!(without_values("missing field `password`"), "missing field `password`");
        assert_eq!(without_values("no quotes at all"), "no quotes at all");
    }

    #[test]
    fn a_decode_error_holds_no_value_of_the_answer() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Creds {
            password: u32,
        }
        let body = json!({"data": {"password": "hunter2-secret", "code": 123456}});
        let e = data_as::<Creds>(&body, 200).unwrap_err();
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains("hunter2") && !shown.contains("123456"), "{shown}");
        assert!(shown.contains("invalid type"), "{shown}");
        assert!(matches!(e, Error::Decode { ref body, .. } if body.is_empty()));
        let ok: serde_json::Value = data_as(&body, 200).unwrap();
        assert_eq!(ok["code"], 123456);
    }
}
