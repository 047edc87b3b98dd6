//! `cargo xtask regen [--spec PATH] [--check]` and `cargo xtask mutants
//! [--in-diff DIFF]` (in `mutants.rs`).
//!
//! `regen` rewrites what the repository commits that is derived from the spec:
//! - `spec/operations.md`: the inventory of every operation (method, path,
//!   Rust method, CLI command, MCP tool), so a spec change shows up in review;
//! - `spec/public-api.txt`: a snapshot of the public API progenitor generates
//!   (client methods, builder setters, types and their fields).
//!
//! - `docs/man/*.1`: the CLI's manual pages, from its command tree (`man.rs`).
//! - `docs/src/cli/reference.md`: the book's command reference, from the same
//!   tree (`book.rs`); `--check` also checks the book's links and that its
//!   Rust chapters are doc tests.
//!
//! `--spec PATH` vendors a new contract into `spec/openapi.yaml` first (the
//! manual pages come from the CLI this xtask was built with: run `cargo
//! xtask regen` again after a new contract to renew them).
//! `--check` writes nothing and fails with a diff when the committed artifacts
//! differ from the spec, or when hand-written coverage is missing: every
//! multipart operation needs a hand-written method marked
//! `#[doc(alias = "<operationId>")]`, and every event type the spec documents
//! needs a typed webhook payload.

mod book;
#[path = "../../src/codegen/mod.rs"]
mod codegen;
#[path = "../../src/codegen/generate.rs"]
#[allow(dead_code)] // `httpmock` is the build's only.
mod generate;
mod man;
mod mutants;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use codegen::{model, prepare};
use serde_json::Value;

const SPEC: &str = "spec/openapi.yaml";
const INVENTORY: &str = "spec/operations.md";
const SNAPSHOT: &str = "spec/public-api.txt";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    match run(&root, &args) {
        Ok(message) => {
            println!("{message}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

fn usage() -> String {
    "usage: cargo xtask regen [--spec PATH] [--check]\n       cargo xtask mutants [--in-diff DIFF] [-- CARGO-MUTANTS-ARGS]".into()
}

fn run(root: &Path, args: &[String]) -> Result<String, String> {
    let mut it = args.iter();
    match it.next().map(String::as_str) {
        Some("regen") => {}
        Some("mutants") => {
            let rest: Vec<&String> = it.collect();
            let (ours, extra) = match rest.iter().position(|a| *a == "--") {
                Some(at) => (&rest[..at], &rest[at + 1..]),
                None => (&rest[..], &rest[rest.len()..]),
            };
            let extra: Vec<&str> = extra.iter().map(|a| a.as_str()).collect();
            return match ours {
                [] => mutants::run(root, None, &extra),
                [flag, diff] if *flag == "--in-diff" => mutants::run(root, Some(diff), &extra),
                _ => Err(usage()),
            };
        }
        _ => return Err(usage()),
    }
    let (mut check, mut new_spec) = (false, None);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--check" => check = true,
            "--spec" => new_spec = Some(it.next().ok_or_else(usage)?.clone()),
            _ => return Err(usage()),
        }
    }
    let vendored = new_spec.is_some();
    if let Some(path) = new_spec {
        if check {
            return Err("--spec and --check do not go together: vendor first, then check".into());
        }
        let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
        // Refuse a spec that cannot be generated before replacing the vendored one.
        artifacts(root, &text)?;
        std::fs::write(root.join(SPEC), text).map_err(|e| format!("cannot write {SPEC}: {e}"))?;
    }
    let text = std::fs::read_to_string(root.join(SPEC)).map_err(|e| format!("cannot read {SPEC}: {e}"))?;
    let produced = artifacts(root, &text)?;
    let pages = if vendored { Vec::new() } else { man::pages()? };
    let reference = if vendored { None } else { Some(book::reference()) };
    if check {
        let mut problems = coverage(root, &text)?;
        for (rel, content) in &produced {
            let committed = std::fs::read_to_string(root.join(rel)).unwrap_or_default();
            if &committed != content {
                let diff = similar::TextDiff::from_lines(&committed, content)
                    .unified_diff()
                    .header(&format!("{rel} (committed)"), &format!("{rel} (from {SPEC})"))
                    .to_string();
                problems.push(format!("{rel} is out of date; run `cargo xtask regen`:\n{diff}"));
            }
        }
        problems.extend(man_drift(root, &pages));
        problems.extend(reference.iter().flat_map(|r| book::problems(root, r)));
        if problems.is_empty() {
            Ok(format!(
                "regen --check: {} artifacts and hand-written coverage match {SPEC}; {} manual pages match the CLI",
                produced.len(),
                pages.len()
            ))
        } else {
            Err(format!("regen --check failed:\n{}", problems.join("\n")))
        }
    } else {
        for (rel, content) in &produced {
            std::fs::write(root.join(rel), content).map_err(|e| format!("cannot write {rel}: {e}"))?;
        }
        if !vendored {
            write_man(root, &pages)?;
            reference.iter().try_for_each(|r| book::write(root, r))?;
        }
        Ok(format!(
            "regen: wrote {}{}",
            produced.iter().map(|(r, _)| *r).collect::<Vec<_>>().join(", "),
            if vendored {
                "; run `cargo xtask regen` again to renew docs/man/ from the new contract".to_owned()
            } else {
                format!(" and {} manual pages in {}", pages.len(), man::DIR)
            }
        ))
    }
}

/// The manual pages that differ from `pages`, or are there and should not be.
fn man_drift(root: &Path, pages: &[(String, String)]) -> Vec<String> {
    let mut problems = Vec::new();
    for (rel, content) in pages {
        let committed = std::fs::read_to_string(root.join(rel)).unwrap_or_default();
        if &committed != content {
            problems.push(format!("{rel} is out of date; run `cargo xtask regen`"));
        }
    }
    let kept = std::fs::read_dir(root.join(man::DIR)).into_iter().flatten().flatten();
    for entry in kept {
        let rel = format!("{}/{}", man::DIR, entry.file_name().to_string_lossy());
        if !pages.iter().any(|(r, _)| *r == rel) {
            problems.push(format!("{rel} names no command any more; run `cargo xtask regen`"));
        }
    }
    problems
}

/// Writes `pages` into `docs/man/`, the pages of commands gone removed.
fn write_man(root: &Path, pages: &[(String, String)]) -> Result<(), String> {
    let dir = root.join(man::DIR);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot make {}: {e}", man::DIR))?;
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let rel = format!("{}/{}", man::DIR, entry.file_name().to_string_lossy());
        if !pages.iter().any(|(r, _)| *r == rel) {
            std::fs::remove_file(entry.path()).map_err(|e| format!("cannot remove {rel}: {e}"))?;
        }
    }
    for (rel, content) in pages {
        std::fs::write(root.join(rel), content).map_err(|e| format!("cannot write {rel}: {e}"))?;
    }
    Ok(())
}

fn normalized(text: &str) -> Result<Value, String> {
    let mut doc = codegen::parse_yaml(text).map_err(|e| format!("{SPEC}: {e}"))?;
    prepare::normalize(&mut doc);
    Ok(doc)
}

/// The committed, spec-derived files and their expected content.
fn artifacts(_root: &Path, text: &str) -> Result<Vec<(&'static str, String)>, String> {
    let doc = normalized(text)?;
    let ops = model::operations(&doc).map_err(|e| format!("{SPEC}: {e}"))?;
    let (_, _, tokens) = generate::client(&doc).map_err(|e| format!("{SPEC}: {e}"))?;
    let code = generate::format(tokens)?;
    Ok(vec![
        (INVENTORY, inventory(&doc, &ops)),
        (SNAPSHOT, api_snapshot(&code)?),
    ])
}

fn inventory(doc: &Value, ops: &[model::Operation]) -> String {
    let version = doc.pointer("/info/version").and_then(Value::as_str).unwrap_or("?");
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<!-- @generated by `cargo xtask regen` from {SPEC}. Do not edit. -->"
    );
    let _ = writeln!(s, "# Operations of the TokPortal API {version}\n");
    let _ = writeln!(
        s,
        "{} operations. Every one is a method of `tokportal::Client`, a `tokportal` CLI command and a `tokportal-mcp` tool.\n",
        ops.len()
    );
    let _ = writeln!(
        s,
        "| operationId (MCP tool) | method | path | Rust method | CLI command | reached through |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    for op in ops {
        let how = if op.is_multipart() {
            "hand-written (multipart)"
        } else {
            "progenitor builder"
        };
        let _ = writeln!(
            s,
            "| `{}` | {} | `{}` | `{}` | `tokportal {}` | {} |",
            op.id,
            op.method.to_uppercase(),
            op.path,
            op.rust_name(),
            op.cli_name(),
            how
        );
    }
    s
}

/// A readable summary of the generated public API: one line per client
/// method, builder setter, type, field and variant.
fn api_snapshot(code: &str) -> Result<String, String> {
    use tokens_text::tokens;
    let file = syn::parse_file(code).map_err(|e| format!("generated code does not parse: {e}"))?;
    let mut lines = Vec::new();
    for item in &file.items {
        match item {
            syn::Item::Impl(imp) if tokens(&imp.self_ty) == "Client" && imp.trait_.is_none() => {
                for it in &imp.items {
                    if let syn::ImplItem::Fn(f) = it {
                        lines.push(format!("Client::{}{}", f.sig.ident, signature(&f.sig)));
                    }
                }
            }
            syn::Item::Mod(m) if m.ident == "builder" || m.ident == "types" => {
                for inner in m.content.iter().flat_map(|(_, items)| items) {
                    describe(&m.ident.to_string(), inner, &mut lines);
                }
            }
            _ => {}
        }
    }
    let mut s =
        format!("# @generated by `cargo xtask regen` from {SPEC}: the public API progenitor generates. Do not edit.\n");
    for line in lines {
        s.push_str(&line);
        s.push('\n');
    }
    Ok(s)
}

fn describe(module: &str, item: &syn::Item, lines: &mut Vec<String>) {
    use tokens_text::tokens;
    match item {
        syn::Item::Struct(st) if matches!(st.vis, syn::Visibility::Public(_)) => {
            lines.push(format!("{module}::{} struct", st.ident));
            if module == "types" {
                for f in &st.fields {
                    if let (Some(name), syn::Visibility::Public(_)) = (&f.ident, &f.vis) {
                        lines.push(format!("{module}::{}.{name}: {}", st.ident, tokens(&f.ty)));
                    }
                }
            }
        }
        syn::Item::Enum(en) => {
            lines.push(format!("{module}::{} enum", en.ident));
            for v in &en.variants {
                lines.push(format!("{module}::{}::{}", en.ident, v.ident));
            }
        }
        syn::Item::Impl(imp) if imp.trait_.is_none() && module == "builder" => {
            for it in &imp.items {
                if let syn::ImplItem::Fn(f) = it
                    && matches!(f.vis, syn::Visibility::Public(_))
                    && f.sig.ident != "new"
                {
                    lines.push(format!(
                        "{module}::{}::{}{}",
                        tokens(&imp.self_ty),
                        f.sig.ident,
                        signature(&f.sig)
                    ));
                }
            }
        }
        syn::Item::Mod(m) if module == "types" && m.ident == "builder" => {
            // typify's struct builders mirror the types; the types already list their fields.
        }
        _ => {}
    }
}

fn signature(sig: &syn::Signature) -> String {
    use tokens_text::tokens;
    let mut bounds = Vec::new();
    for p in &sig.generics.params {
        if let syn::GenericParam::Type(t) = p {
            if t.bounds.is_empty() {
                continue;
            }
            bounds.push(format!(
                "{}: {}",
                t.ident,
                t.bounds.iter().map(tokens).collect::<Vec<_>>().join(" + ")
            ));
        }
    }
    for pred in sig.generics.where_clause.iter().flat_map(|w| &w.predicates) {
        bounds.push(tokens(pred));
    }
    let output = match &sig.output {
        syn::ReturnType::Default => String::new(),
        syn::ReturnType::Type(_, t) => format!(" -> {}", tokens(t)),
    };
    let args: Vec<String> = sig
        .inputs
        .iter()
        .filter_map(|a| match a {
            syn::FnArg::Typed(t) => Some(format!("{}: {}", tokens(&t.pat), tokens(&t.ty))),
            syn::FnArg::Receiver(_) => None,
        })
        .collect();
    let bounds = if bounds.is_empty() {
        String::new()
    } else {
        format!(" where {}", bounds.join(", "))
    };
    format!("({}){output}{bounds}", args.join(", "))
}

/// The source text of a syn node, with progenitor's spacing tidied.
mod tokens_text {
    pub fn tokens(t: &impl quote::ToTokens) -> String {
        let mut ts = proc_macro2::TokenStream::new();
        t.to_tokens(&mut ts);
        let raw = ts.to_string();
        let chars: Vec<char> = raw.chars().collect();
        let mut out = String::with_capacity(raw.len());
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                let prev = i.checked_sub(1).and_then(|p| chars.get(p)).copied().unwrap_or(' ');
                let next = chars.get(i + 1).copied().unwrap_or(' ');
                if "<:&(['".contains(prev) || "<>:,)]".contains(next) {
                    continue;
                }
            }
            out.push(c);
        }
        out
    }
}

/// Hand-written parts the spec requires: the multipart methods and the typed webhook events.
fn coverage(root: &Path, text: &str) -> Result<Vec<String>, String> {
    let doc = normalized(text)?;
    let mut sources = String::new();
    collect_sources(&root.join("src"), &mut sources)?;
    let mut problems = Vec::new();
    for id in prepare::multipart_operations(&doc) {
        if !sources.contains(&format!("#[doc(alias = \"{id}\")]")) {
            problems.push(format!(
                "multipart operation `{id}` has no hand-written method: add one marked #[doc(alias = \"{id}\")] (progenitor cannot generate it)"
            ));
        }
    }
    let webhooks = std::fs::read_to_string(root.join("src/webhooks.rs")).unwrap_or_default();
    let event_types = doc
        .pointer("/components/schemas/WebhookEventsResponse/properties/data/properties/envelope/properties/type/enum")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for t in event_types.iter().filter_map(Value::as_str) {
        if !webhooks.contains(&format!("\"{t}\" =>")) {
            problems.push(format!(
                "webhook event type `{t}` has no typed payload in src/webhooks.rs"
            ));
        }
    }
    Ok(problems)
}

fn collect_sources(dir: &Path, out: &mut String) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_sources(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push_str(&std::fs::read_to_string(&path).unwrap_or_default());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A copy of the repository parts `regen` reads and writes.
    fn sandbox() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        for rel in [SPEC, INVENTORY, SNAPSHOT] {
            let to = dir.path().join(rel);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(repo.join(rel), to).unwrap();
        }
        copy_dir(&repo.join("src"), &dir.path().join("src"));
        // The book and the pages whose links `--check` follows (book.rs).
        copy_dir(&repo.join("docs"), &dir.path().join("docs"));
        for rel in ["README.md", "CONTRIBUTING.md", "CHANGELOG.md"] {
            std::fs::copy(repo.join(rel), dir.path().join(rel)).unwrap();
        }
        dir
    }

    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap().flatten() {
            if e.path().is_dir() {
                copy_dir(&e.path(), &to.join(e.file_name()));
            } else {
                std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
            }
        }
    }

    fn check(root: &Path) -> Result<String, String> {
        run(root, &["regen".into(), "--check".into()])
    }

    fn edit_spec(root: &Path, f: impl FnOnce(&mut Value)) {
        let text = std::fs::read_to_string(root.join(SPEC)).unwrap();
        let mut doc = codegen::parse_yaml(&text).unwrap();
        f(&mut doc);
        std::fs::write(root.join(SPEC), serde_norway::to_string(&doc).unwrap()).unwrap();
    }

    #[test]
    fn a_manual_page_out_of_date_or_left_over_is_drift() {
        let dir = sandbox();
        let page = dir.path().join(man::DIR).join("tokportal-create-bundle.1");
        std::fs::write(&page, "stale").unwrap();
        std::fs::write(dir.path().join(man::DIR).join("tokportal-gone.1"), "gone").unwrap();
        let err = check(dir.path()).unwrap_err();
        assert!(
            err.contains("docs/man/tokportal-create-bundle.1 is out of date"),
            "{err}"
        );
        assert!(err.contains("docs/man/tokportal-gone.1 names no command"), "{err}");
        run(dir.path(), &["regen".into()]).unwrap();
        check(dir.path()).unwrap();
        let text = std::fs::read_to_string(page).unwrap();
        assert!(text.contains("bundle\\-type"), "the page names the body's flags");
    }

    #[test]
    fn committed_artifacts_are_current() {
        let dir = sandbox();
        check(dir.path()).expect("the repository is in sync");
    }

    #[test]
    fn a_changed_summary_is_drift_with_a_diff() {
        let dir = sandbox();
        edit_spec(dir.path(), |d| {
            d["paths"]["/me"]["get"]["operationId"] = "whoAmI".into()
        });
        let err = check(dir.path()).unwrap_err();
        assert!(err.contains("spec/operations.md is out of date"), "{err}");
        assert!(err.contains("+| `whoAmI` | GET | `/me` | `who_am_i`"), "{err}");
        assert!(err.contains("Client::who_am_i"), "the API snapshot moves too: {err}");
        // regen brings it back in line.
        run(dir.path(), &["regen".into()]).unwrap();
        check(dir.path()).unwrap();
    }

    #[test]
    fn an_uncovered_multipart_operation_fails() {
        let dir = sandbox();
        edit_spec(dir.path(), |d| {
            let mut op = d["paths"]["/upload/video/direct"]["post"].clone();
            op["operationId"] = "uploadAudioDirect".into();
            d["paths"]["/upload/audio/direct"] = serde_json::json!({"post": op});
        });
        run(dir.path(), &["regen".into()]).unwrap();
        let err = check(dir.path()).unwrap_err();
        assert!(
            err.contains("multipart operation `uploadAudioDirect` has no hand-written method"),
            "{err}"
        );
    }

    #[test]
    fn a_new_event_type_needs_a_typed_payload() {
        let dir = sandbox();
        edit_spec(dir.path(), |d| {
            let e = d.pointer_mut("/components/schemas/WebhookEventsResponse/properties/data/properties/envelope/properties/type/enum").unwrap();
            e.as_array_mut().unwrap().push("comment.created".into());
        });
        run(dir.path(), &["regen".into()]).unwrap();
        let err = check(dir.path()).unwrap_err();
        assert!(err.contains("`comment.created` has no typed payload"), "{err}");
    }

    #[test]
    fn a_broken_spec_is_refused_before_vendoring() {
        let dir = sandbox();
        let bad = dir.path().join("bad.yaml");
        std::fs::write(&bad, "openapi: 3.1.0\npaths:\n  /x:\n    get:\n      responses: {}\n").unwrap();
        let before = std::fs::read_to_string(dir.path().join(SPEC)).unwrap();
        let err = run(
            dir.path(),
            &["regen".into(), "--spec".into(), bad.display().to_string()],
        )
        .unwrap_err();
        assert!(err.contains("operationId"), "{err}");
        assert_eq!(std::fs::read_to_string(dir.path().join(SPEC)).unwrap(), before);
    }
}
