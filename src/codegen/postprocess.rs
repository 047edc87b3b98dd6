//! Rewrites progenitor's output (a `syn::File`) before it is written, so the
//! typed SDK reads like a Rust library rather than generator output:
//!
//! - every builder's `send()` returns `Result<ResponseValue<T>, crate::Error>`;
//!   progenitor's own is kept, private, as `send_generated()`, and its error
//!   is converted with the operation's id, so nothing is lost and no caller
//!   writes `.map_err`;
//! - a repeatable query filter (a `Vec<String>` parameter) takes one value or
//!   many (`.account("A")` or `.account(["A", "B"])`), through
//!   `crate::IntoValues`.
//!
//! Shared by `build.rs` and `cargo xtask` (both include this file by path).

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

/// Applies every rewrite to `file`.
pub fn postprocess(file: &mut syn::File) {
    for item in &mut file.items {
        if let syn::Item::Mod(module) = item
            && module.ident == "builder"
            && let Some((_, items)) = &mut module.content
        {
            for item in items.iter_mut() {
                if let syn::Item::Impl(imp) = item {
                    rewrite_builder(imp);
                }
            }
        }
    }
}

/// `GetBundle` → `getBundle`.
fn operation_id(self_ty: &syn::Type) -> Option<String> {
    let syn::Type::Path(path) = self_ty else { return None };
    let name = path.path.segments.last()?.ident.to_string();
    let mut chars = name.chars();
    chars
        .next()
        .map(|first| first.to_ascii_lowercase().to_string() + chars.as_str())
}

fn rewrite_builder(imp: &mut syn::ItemImpl) {
    let Some(op) = operation_id(&imp.self_ty) else { return };
    let mut added = Vec::new();
    for item in &mut imp.items {
        let syn::ImplItem::Fn(f) = item else { continue };
        if f.sig.ident == "send" {
            if let Some(public) = converted_send(f, &op) {
                added.push(public);
            }
        } else {
            one_or_many(f);
        }
    }
    imp.items.extend(added);
}

/// Renames progenitor's `send` to a private `send_generated` and returns a
/// public `send` that converts its error into `crate::Error`.
fn converted_send(f: &mut syn::ImplItemFn, op: &str) -> Option<syn::ImplItem> {
    let syn::ReturnType::Type(_, ty) = &f.sig.output else {
        return None;
    };
    let syn::Type::Path(result) = ty.as_ref() else {
        return None;
    };
    let last = result.path.segments.last()?;
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    let ok = args.args.first()?.clone();
    let docs: Vec<syn::Attribute> = f.attrs.iter().filter(|a| a.path().is_ident("doc")).cloned().collect();
    f.attrs.retain(|a| !a.path().is_ident("doc"));
    f.sig.ident = format_ident!("send_generated");
    f.vis = syn::Visibility::Inherited;
    let tokens: TokenStream = quote! {
        #(#docs)*
        /// Sends the request. Every failure is a [`crate::Error`]: an API error
        /// answer with its status, code, request id and rate limit, an
        /// argument that does not match the spec (nothing sent), a transport
        /// failure.
        pub async fn send(self) -> Result<#ok, crate::Error> {
            self.send_generated().await.map_err(|e| crate::Error::from_generated(e, #op))
        }
    };
    syn::parse2(tokens).ok()
}

/// A setter bounded by `TryInto<Vec<String>>` becomes one bounded by
/// `crate::IntoValues`, taking one value or many.
fn one_or_many(f: &mut syn::ImplItemFn) {
    let Some(where_clause) = &f.sig.generics.where_clause else {
        return;
    };
    let bound = quote!(#where_clause).to_string().replace(' ', "");
    if !bound.contains("TryInto<::std::vec::Vec<::std::string::String>>") {
        return;
    }
    let field = f.sig.ident.clone();
    let Some(syn::GenericParam::Type(param)) = f.sig.generics.params.first() else {
        return;
    };
    let param = param.ident.clone();
    f.sig.generics.where_clause = syn::parse2(quote!(where #param: crate::IntoValues)).ok();
    let doc = format!(
        "Sets `{field}`: one value (`.{field}(\"a\")`) or many (`.{field}([\"a\", \"b\"])`), sent as repeated keys."
    );
    f.attrs.push(syn::parse_quote!(#[doc = #doc]));
    f.block = syn::parse_quote!({
        self.#field = Ok(Some(crate::IntoValues::into_values(value)));
        self
    });
}
