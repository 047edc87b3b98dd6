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
//! Every call, typed or not, fails with one error type, [`Error`]. Requests
//! are typed; of the answers, the contract types three (`MeResponse`,
//! `CreateBundleResponse`, `WebhookEventsResponse`): decode the others'
//! `data` into your own types with [`ResponseData::data_as`] or
//! [`OperationResponse::data_as`].
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

/// The progenitor-generated client (`OUT_DIR/progenitor.rs`): the [`Client`]
/// struct and one typed builder per JSON operation. Do not edit: it is
/// regenerated from `spec/openapi.yaml` on every build, and rewritten on the
/// way (`src/codegen/postprocess.rs`) so that every `send()` enters the
/// request pipeline through `src/client/typed.rs`.
#[allow(missing_docs, clippy::all, clippy::pedantic, unused_imports, rustdoc::all)]
pub mod generated {
    include!(concat!(env!("OUT_DIR"), "/progenitor.rs"));
}

// The layers, bottom to top (ARCHITECTURE.md). A module only imports from its
// own layer or the ones below; `tests/layers.rs` checks it.
//
// 1. the spec model and the vocabulary every layer shares
mod data;
mod dry_run;
mod error;
pub mod headers;
pub mod idempotency;
mod meta;
pub mod operations;
mod secret;
pub mod webhooks;
// 2. argument checks against the spec's schemas
mod check;
// 3. the request pipeline: prepare, execute with retries, decode
mod pipeline;
// 4. the client and its configuration (and the generated `Client` struct)
mod client;
// 5. the calls: typed (generated), dynamic, uploads, pagination
mod calls;
#[cfg(feature = "mock")]
pub mod mock;
// 6. the front-ends
#[cfg(feature = "cli")]
pub mod cli;
#[cfg(feature = "mcp")]
pub mod mcp;
#[cfg(feature = "profiles")]
pub mod profiles;
#[cfg(feature = "sandbox")]
pub mod sandbox;

pub use calls::{pagination, raw, uploads};
pub use check::{IntoValues, OperationArgs};
pub use client::{
    API_KEY_ENV, BASE_URL_ENV, CLIENT_IDENTIFIER, ClientBuilder, DEFAULT_BASE_URL, DEFAULT_MAX_RESPONSE_BODY,
    STRICT_CONTRACT_ENV, redirect_policy,
};
pub use data::ResponseData;
pub use dry_run::DryRunPreview;
pub use error::{ApiError, Error, InvalidField};
pub use generated::{ByteStream, Client, ResponseValue, builder, types};
pub use meta::{RateLimit, ResponseExt, ResponseMeta};
pub use pipeline::{ClientState, OperationResponse, ResponseBody, RetryPolicy};
pub use secret::Secret;

/// The build-time code (`build.rs`, `cargo xtask`), compiled here for its unit tests.
#[cfg(test)]
#[path = "codegen/mod.rs"]
mod codegen;

/// The README's code blocks, compiled and run as doc tests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// The book's chapters (`docs/src/`) that hold Rust blocks, compiled and run
/// as doc tests: one item per chapter, so a failure names its page.
#[cfg(doctest)]
pub mod book {
    /// `docs/src/sdk/index.md`
    #[doc = include_str!("../docs/src/sdk/index.md")]
    pub struct Sdk;
    /// `docs/src/sdk/reliability.md`
    #[doc = include_str!("../docs/src/sdk/reliability.md")]
    pub struct SdkReliability;
    /// `docs/src/sandbox/time.md`
    #[doc = include_str!("../docs/src/sandbox/time.md")]
    pub struct SandboxTime;
    /// `docs/src/observability.md`
    #[doc = include_str!("../docs/src/observability.md")]
    pub struct Observability;
}
