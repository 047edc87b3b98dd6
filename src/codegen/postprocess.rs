//! Rewrites progenitor's output (a `syn::File`) before it is written, so the
//! typed SDK reads like a Rust library rather than generator output:
//!
//! - every builder's `send()` returns `Result<ResponseValue<T>, crate::Error>`.
//!   progenitor's own is cut in two: the part that builds the request is kept,
//!   private, as `request()` (`client::typed` turns its conversion errors
//!   into `crate::Error`, naming the operation and the field), and the part
//!   that sends it through
//!   progenitor's hooks and decodes the answer is replaced by a call into
//!   `crate::client::typed`, the SDK's own pipeline. So no caller writes
//!   `.map_err`, nothing is lost, and an answer is decoded from the bytes the
//!   attempt read, once;
//! - the query parameters are serialized into the built request at once,
//!   through `crate::client::typed::query`, rather than by one
//!   `RequestBuilder::query` call per parameter (each of which sets up and
//!   tears down its own serializer, set or not);
//! - progenitor's `api-version` request header, which the contract does not
//!   document and no other surface sends, is left out;
//! - a repeatable query filter (a `Vec<String>` parameter) takes one value or
//!   many (`.account("A")` or `.account(["A", "B"])`), through
//!   `crate::IntoValues`;
//! - an object the contract leaves untyped is a `serde_json::Value`, not a
//!   `serde_json::Map` ([`untyped_as_value`]): `bundle.data["id"]` is `Null`
//!   when the answer has no `id`, where a `Map` would panic;
//! - progenitor's `Client::new` (which unwraps reqwest's build) is left out
//!   and `Client::new_with_client` is the crate's own: neither sets the
//!   redirect guard, so the only public way to a client is `ClientBuilder`.
//!
//! Shared by `build.rs` and `cargo xtask` (both include this file by path).

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

/// Applies every rewrite to `file`. A `send()` whose shape the rewrite does
/// not know (a newer progenitor) is an error: a typed call must never bypass
/// the pipeline.
pub fn postprocess(file: &mut syn::File) -> Result<(), String> {
    for item in &mut file.items {
        if let syn::Item::Impl(imp) = item
            && imp.trait_.is_none()
            && builder_name(&imp.self_ty).as_deref() == Some("Client")
        {
            // `new` unwraps reqwest's build: gone. `new_with_client` is what
            // `ClientBuilder` calls, after setting the redirect guard.
            imp.items
                .retain(|item| !matches!(item, syn::ImplItem::Fn(f) if f.sig.ident == "new"));
            for item in &mut imp.items {
                if let syn::ImplItem::Fn(f) = item
                    && f.sig.ident == "new_with_client"
                {
                    f.vis = syn::parse_quote!(pub(crate));
                }
            }
        }
        if let syn::Item::Mod(module) = item
            && module.ident == "builder"
            && let Some((_, items)) = &mut module.content
        {
            for item in items.iter_mut() {
                if let syn::Item::Impl(imp) = item {
                    rewrite_builder(imp)?;
                }
            }
        }
    }
    Ok(())
}

/// The builder's type name (`GetBundle`), for the build's error messages.
fn builder_name(self_ty: &syn::Type) -> Option<String> {
    let syn::Type::Path(path) = self_ty else { return None };
    Some(path.path.segments.last()?.ident.to_string())
}

fn rewrite_builder(imp: &mut syn::ItemImpl) -> Result<(), String> {
    let Some(builder) = builder_name(&imp.self_ty) else {
        return Ok(());
    };
    let mut added = Vec::new();
    for item in &mut imp.items {
        let syn::ImplItem::Fn(f) = item else { continue };
        if f.sig.ident == "send" {
            added.push(split_send(f).map_err(|why| format!("the generated send() of {builder}: {why}"))?);
        } else {
            one_or_many(f);
        }
    }
    imp.items.extend(added);
    Ok(())
}

/// How a success answer becomes the builder's value, read from progenitor's
/// final `match` on the status: the name of the `crate::client::typed`
/// function that does the same.
fn answer_kind(stmt: &syn::Stmt) -> Option<&'static str> {
    let text = quote!(#stmt).to_string().replace(' ', "");
    if !text.starts_with("matchresponse.status()") {
        return None;
    }
    if text.contains("ResponseValue::from_response") {
        Some("json")
    } else if text.contains("ResponseValue::stream") {
        Some("stream")
    } else if text.contains("ResponseValue::empty") {
        Some("empty")
    } else {
        None
    }
}

/// The Rust method progenitor names the operation by, from its
/// `let info = OperationInfo { operation_id: "..." };`.
fn operation_info(stmt: &syn::Stmt) -> Option<String> {
    let syn::Stmt::Local(local) = stmt else { return None };
    let syn::Expr::Struct(info) = local.init.as_ref()?.expr.as_ref() else {
        return None;
    };
    if !info.path.is_ident("OperationInfo") {
        return None;
    }
    info.fields.iter().find_map(|field| match (&field.member, &field.expr) {
        (
            syn::Member::Named(name),
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(value),
                ..
            }),
        ) if name == "operation_id" => Some(value.value()),
        _ => None,
    })
}

/// Cuts progenitor's `send` in two: `f` becomes the private `request()`,
/// which ends where the request is built, and the returned public `send()`
/// hands that request to `crate::client::typed`.
fn split_send(f: &mut syn::ImplItemFn) -> Result<syn::ImplItem, String> {
    let syn::ReturnType::Type(_, ty) = &f.sig.output else {
        return Err("returns nothing".into());
    };
    let syn::Type::Path(result) = ty.as_ref() else {
        return Err("does not return a Result".into());
    };
    let last = result.path.segments.last().ok_or("does not return a Result")?;
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return Err("does not return a Result".into());
    };
    let mut args = args.args.iter();
    let (Some(ok), Some(error)) = (args.next().cloned(), args.next().cloned()) else {
        return Err("does not return a Result<T, E>".into());
    };
    let stmts = &f.block.stmts;
    let (info, rust_method) = stmts
        .iter()
        .enumerate()
        .find_map(|(at, s)| operation_info(s).map(|name| (at, name)))
        .ok_or("no OperationInfo")?;
    let kind = stmts
        .last()
        .and_then(answer_kind)
        .ok_or("an unknown way of reading the answer")?;
    let kind = format_ident!("{kind}");
    let mut built: Vec<syn::Stmt> = stmts[..info]
        .iter()
        .filter(|s| !quote!(#s).to_string().contains("\"api-version\""))
        .cloned()
        .collect();
    let at = built
        .iter()
        .position(|s| {
            quote!(#s)
                .to_string()
                .starts_with("# [allow (unused_mut)] let mut request")
        })
        .ok_or("no `request` is built")?;
    let params = take_query_calls(&mut built[at])?;
    if !params.is_empty() {
        built.insert(
            at + 1,
            syn::parse_quote! {
                crate::client::typed::query(&mut request, |pairs| {
                    #(pairs.add(#params)?;)*
                    Ok(())
                })
                .map_err(Error::InvalidRequest)?;
            },
        );
    }
    let docs: Vec<syn::Attribute> = f.attrs.iter().filter(|a| a.path().is_ident("doc")).cloned().collect();
    f.attrs.retain(|a| !a.path().is_ident("doc"));
    f.attrs
        .push(syn::parse_quote!(#[doc = "Builds the request, as progenitor does; `send` sends it."]));
    f.sig.ident = format_ident!("request");
    f.sig.asyncness = None;
    f.vis = syn::Visibility::Inherited;
    f.sig.output = syn::parse_quote!(-> Result<(&'a super::Client, reqwest::Request), #error>);
    f.block.stmts = built;
    f.block.stmts.push(syn::parse_quote!(return Ok((client, request));));
    let tokens: TokenStream = quote! {
        #(#docs)*
        /// Sends the request. Every failure is a [`crate::Error`]: an API error
        /// answer with its status, code, request id and rate limit, an
        /// argument that does not match the spec (nothing sent), a transport
        /// failure.
        pub async fn send(self) -> Result<#ok, crate::Error> {
            crate::client::typed::#kind(self.request(), #rust_method).await
        }
    };
    syn::parse2(tokens).map_err(|e| e.to_string())
}

/// Takes every `.query(param)` call out of the request's builder chain
/// (`let mut request = client.client.get(url)...build()?;`) and returns
/// their arguments, in order.
fn take_query_calls(stmt: &mut syn::Stmt) -> Result<Vec<syn::Expr>, String> {
    fn strip(expr: syn::Expr, params: &mut Vec<syn::Expr>) -> syn::Expr {
        match expr {
            syn::Expr::MethodCall(mut call) => {
                let receiver = strip(*call.receiver, params);
                if call.method == "query" && call.args.len() == 1 {
                    params.extend(call.args);
                    receiver
                } else {
                    call.receiver = Box::new(receiver);
                    syn::Expr::MethodCall(call)
                }
            }
            syn::Expr::Try(mut tried) => {
                tried.expr = Box::new(strip(*tried.expr, params));
                syn::Expr::Try(tried)
            }
            other => other,
        }
    }
    let syn::Stmt::Local(local) = stmt else {
        return Err("the request is not built by a `let`".into());
    };
    let init = local.init.as_mut().ok_or("the request is not built by a `let`")?;
    let mut params = Vec::new();
    let chain = std::mem::replace(init.expr.as_mut(), syn::parse_quote!(()));
    *init.expr = strip(chain, &mut params);
    Ok(params)
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

/// Every `::serde_json::Map<::std::string::String, ::serde_json::Value>`
/// in `tokens` becomes `::serde_json::Value`, and the serde attribute that
/// skips an empty map skips a `null` instead. Done on tokens, before the
/// file is parsed, since the type stands in fields, builders and bounds
/// alike.
pub fn untyped_as_value(tokens: TokenStream) -> TokenStream {
    use proc_macro2::{Group, TokenTree};
    let map: Vec<String> = quote!(::serde_json::Map<::std::string::String, ::serde_json::Value>)
        .into_iter()
        .map(|t| t.to_string())
        .collect();
    let input: Vec<TokenTree> = tokens.into_iter().collect();
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let matches = input.len() - i >= map.len()
            && input[i..i + map.len()]
                .iter()
                .zip(&map)
                .all(|(t, m)| !matches!(t, TokenTree::Group(_)) && t.to_string() == *m);
        if matches {
            out.extend(quote!(::serde_json::Value));
            i += map.len();
            continue;
        }
        out.push(match &input[i] {
            TokenTree::Group(g) => {
                let mut inner = Group::new(g.delimiter(), untyped_as_value(g.stream()));
                inner.set_span(g.span());
                TokenTree::Group(inner)
            }
            TokenTree::Literal(l) if l.to_string() == "\"::serde_json::Map::is_empty\"" => {
                TokenTree::Literal(proc_macro2::Literal::string("::serde_json::Value::is_null"))
            }
            other => other.clone(),
        });
        i += 1;
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_untyped_object_becomes_a_value() {
        let tokens = quote! {
            pub struct A {
                #[serde(default, skip_serializing_if = "::serde_json::Map::is_empty")]
                pub data: ::serde_json::Map<::std::string::String, ::serde_json::Value>,
                pub list: Vec<::serde_json::Map<::std::string::String, ::serde_json::Value> >,
                pub kept: ::serde_json::Map<::std::string::String, u8>,
            }
        };
        let text = untyped_as_value(tokens).to_string().replace(' ', "");
        assert!(text.contains("pubdata:::serde_json::Value,"), "{text}");
        assert!(text.contains("Vec<::serde_json::Value>"), "{text}");
        assert!(text.contains("\"::serde_json::Value::is_null\""), "{text}");
        assert!(text.contains("::serde_json::Map<::std::string::String,u8>"), "{text}");
    }

    #[test]
    fn the_generated_constructors_leave_the_public_api() {
        let mut file: syn::File = syn::parse_quote! {
            pub struct Client;
            impl Client {
                pub fn new(baseurl: &str) -> Self { Client }
                pub fn new_with_client(baseurl: &str) -> Self { Client }
                pub fn baseurl(&self) -> &str { "" }
            }
        };
        postprocess(&mut file).unwrap();
        let text = quote!(#file).to_string().replace(' ', "");
        assert!(!text.contains("fnnew("), "{text}");
        assert!(text.contains("pub(crate)fnnew_with_client("), "{text}");
        assert!(text.contains("pubfnbaseurl("), "{text}");
    }
}
