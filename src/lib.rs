//! # tokportal
//!
//! Rust SDK for the [TokPortal](https://app.tokportal.com) public API: geo-targeted
//! TikTok, Instagram and YouTube accounts, video bundles, uploads, analytics,
//! comment tasks and webhooks.
//!
//! Every operation of the vendored contract (`spec/openapi.yaml`) is a typed
//! builder method on [`Client`], generated at build time by progenitor; the
//! three multipart uploads are written by hand from the same spec. Around them
//! sits a thin hand-written layer: configuration ([`ClientBuilder`]), one error
//! type ([`Error`]), idempotency keys, safe retries ([`RetryPolicy`]),
//! pagination, streaming uploads and webhook verification ([`webhooks`]).
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use tokportal::types::{CreateBundleRequest, CreateBundleRequestBundleType};
//! let client = tokportal::Client::from_env()?; // TOKPORTAL_API_KEY
//! let me = client.get_current_user().send().await?;
//! println!("credits: {}", me.data.credits.balance);
//!
//! let bundle = client
//!     .create_bundle()
//!     .body(
//!         CreateBundleRequest::builder()
//!             .bundle_type(CreateBundleRequestBundleType::AccountAndVideos)
//!             .country(Some("USA".parse()?))
//!             .videos_quantity(5),
//!     )
//!     .idempotency_key("bundle-create-123")
//!     .send()
//!     .await?;
//! println!("{:?}", bundle.data);
//! # Ok(()) }
//! ```
//!
//! Errors of the generated methods convert into [`Error`] with `?`.
#![warn(missing_docs)]

/// The progenitor-generated client (`OUT_DIR/progenitor.rs`). Do not edit: it is
/// regenerated from `spec/openapi.yaml` on every build.
#[allow(missing_docs, clippy::all, clippy::pedantic, unused_imports, rustdoc::all)]
pub mod generated {
    include!(concat!(env!("OUT_DIR"), "/progenitor.rs"));
}

#[cfg(feature = "mock")]
pub mod mock;

mod client;
mod error;
pub mod idempotency;
mod meta;
pub mod operations;
pub mod pagination;
mod retry;
mod secret;
mod transport;
pub mod uploads;
mod validate;
pub mod webhooks;

pub use client::{
    API_KEY_ENV, BASE_URL_ENV, CLIENT_IDENTIFIER, ClientBuilder, ClientState, DEFAULT_BASE_URL, redirect_policy,
};
pub use error::{ApiError, Error};
pub use generated::{ByteStream, Client, ResponseValue, builder, types};
pub use meta::{RateLimit, ResponseExt, ResponseMeta};
pub use operations::{OperationArgs, OperationResponse, ResponseBody};
pub use retry::RetryPolicy;
pub use secret::Secret;

impl Client {
    /// A [`ClientBuilder`] with defaults and nothing read from the environment.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }

    /// A client configured from `TOKPORTAL_API_KEY` and `TOKPORTAL_BASE_URL`.
    pub fn from_env() -> Result<Client, Error> {
        ClientBuilder::from_env().build()
    }

    /// The base URL calls go to.
    pub fn base_url(&self) -> &str {
        &self.baseurl
    }
}

/// The build-time code (`build.rs`, `cargo xtask`), compiled here for its unit tests.
#[cfg(test)]
#[path = "codegen/mod.rs"]
mod codegen;

/// The README's code blocks, compiled and run as doc tests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
