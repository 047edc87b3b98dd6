//! The progenitor invocation, shared by `build.rs` and `cargo xtask` (both
//! include this file by path; the library does not, it has no progenitor).

use super::prepare;
use serde_json::Value;

#[path = "postprocess.rs"]
mod postprocess;

/// progenitor's settings: builder interface, the SDK's `ClientState` as the
/// client's inner value. progenitor's hooks are left at their defaults: the
/// rewritten `send()` never calls them (see `postprocess.rs`).
pub fn settings() -> Result<progenitor::GenerationSettings, String> {
    let mut settings = progenitor::GenerationSettings::new();
    settings
        .with_interface(progenitor::InterfaceStyle::Builder)
        .with_tag(progenitor::TagStyle::Merged)
        .with_inner_type("crate::pipeline::ClientState".parse().map_err(|e| format!("{e:?}"))?)
        .with_derive("PartialEq");
    Ok(settings)
}

/// Parses a progenitor input document as OpenAPI 3.0.
pub fn parse_openapi(input: Value) -> Result<openapiv3::OpenAPI, String> {
    serde_json::from_value(input).map_err(|e| format!("the lowered document is not valid OpenAPI 3.0: {e}"))
}

/// The generated client for a normalized document.
pub fn client(doc: &Value) -> Result<(progenitor::Generator, openapiv3::OpenAPI, proc_macro2::TokenStream), String> {
    let spec = parse_openapi(prepare::for_progenitor(doc).map_err(|e| e.to_string())?)?;
    let mut generator = progenitor::Generator::new(&settings()?);
    let tokens = quietly(|| generator.generate_tokens(&spec))?.map_err(|e| format!("progenitor: {e}"))?;
    Ok((generator, spec, tokens))
}

/// The httpmock expectations for a normalized document.
///
/// progenitor's httpmock generator cannot match array query parameters, so
/// its input leaves the repeatable ones out (match them with
/// `into_inner().query_param(..)`). Its own generator sees the same input, so
/// the type names it refers to are the client's.
pub fn httpmock(doc: &Value) -> Result<proc_macro2::TokenStream, String> {
    let mut input = prepare::for_progenitor(doc).map_err(|e| e.to_string())?;
    prepare::drop_array_query_params(&mut input);
    let spec = parse_openapi(input)?;
    let mut generator = progenitor::Generator::new(&settings()?);
    quietly(|| generator.generate_tokens(&spec))?.map_err(|e| format!("progenitor: {e}"))?;
    quietly(|| generator.httpmock(&spec, "crate::generated"))?.map_err(|e| format!("progenitor httpmock: {e}"))
}

/// Formats generated tokens as a Rust file, after the rewrites of
/// `postprocess.rs` (a `send()` returning `crate::Error`, one-or-many filters).
///
/// progenitor documents each method with a usage sketch marked ```` ```ignore ````
/// (it names values the reader supplies); it is shown as text, so that rustdoc
/// does not count 75 ignored doc tests.
pub fn format(tokens: proc_macro2::TokenStream) -> Result<String, String> {
    let tokens = postprocess::untyped_as_value(tokens);
    let mut file: syn::File = syn::parse2(tokens).map_err(|e| format!("generated code does not parse: {e}"))?;
    postprocess::postprocess(&mut file)?;
    Ok(prettyplease::unparse(&file).replace("```ignore", "```text"))
}

/// Runs progenitor with its panics turned into an error message (it asserts on
/// some unsupported inputs): the build prints one readable line, not a backtrace.
fn quietly<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    std::panic::set_hook(previous);
    result.map_err(|payload| {
        let what = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown cause".into());
        format!("progenitor could not generate the client: {what}")
    })
}
