//! The `data` of an answer as the caller's own type. The contract types only
//! three success bodies; every other answer is a JSON object whose `data` a
//! caller can decode into a struct of their own, with a typed error.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::Error;

/// Decodes an answer's `data` (the whole body when it has none) into `U`.
pub(crate) fn data_as<U: DeserializeOwned>(body: &Value, status: u16) -> Result<U, Error> {
    let data = body.get("data").unwrap_or(body);
    U::deserialize(data).map_err(|e| {
        Error::decode(
            status,
            format!("`data` is not a {}: {e}", std::any::type_name::<U>()),
            data.to_string().as_bytes(),
        )
    })
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
