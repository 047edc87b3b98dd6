//! The layers of ARCHITECTURE.md, checked: every `crate::` and `super::`
//! path, root re-export and use of a module's own children (`journal::Entry`
//! where the module declares `mod journal;`) that a module of `src/` names
//! points at its own layer or one below (and, in the sandbox, its own room
//! or one below); the graph of those imports has no circle; and
//! ARCHITECTURE.md's layer table names the same modules, in the same layers,
//! as `LAYERS` here and the files of `src/`.
//!
//! What is an edge: a `mod.rs`'s (or any module's) uses of its children
//! count like any other import, so `behaviour/mod.rs` reaching into
//! `bundles` is one. A module's uses of the modules that contain it
//! (`super::Handler` from a handler module, `crate::sandbox::SandboxOptions`
//! from inside `sandbox`) are not: a module is part of its parent, and
//! counting them would make every parent that declares a child a circle.
//! A circle that leaves the parent's folder (`behaviour` → `bundles` →
//! `manager` → `behaviour`) is counted and fails.
//! `a_circle_made_in_a_copy_is_found` and
//! `a_circle_through_a_mod_rs_and_its_child_is_found` run the check over a
//! copy of `src/` with a circle added by hand, so the check is known to see
//! one.
//!
//! Hand-rolled on purpose: path scanning over our own sources, where a Rust
//! parser crate would only add build time to `cargo test`. It reads paths,
//! not names brought in by a glob (`use super::*`) or a private `use`
//! re-exported to children: those are seen where they are first named.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level modules by layer, bottom to top. A new module must be placed here.
const LAYERS: &[(&str, u8)] = &[
    ("codegen", 0),
    ("data", 1),
    ("dry_run", 1),
    ("headers", 1),
    ("secret", 1),
    ("meta", 1),
    ("error", 1),
    ("idempotency", 1),
    ("operations", 1),
    ("webhooks", 1),
    ("check", 2),
    ("pipeline", 3),
    ("client", 4),
    ("generated", 4),
    ("calls", 5),
    ("mock", 5),
    ("cli", 6),
    ("mcp", 6),
    ("profiles", 6),
    ("sandbox", 6),
];

/// The sandbox's rooms, bottom to top (ARCHITECTURE.md, "The sandbox"): a
/// room imports only from itself or the rooms below; `sandbox` itself (its
/// `mod.rs`) puts them together.
const SANDBOX_ROOMS: &[(&str, u8)] = &[("contract", 0), ("logbook", 1), ("world", 2), ("live", 3), ("face", 4)];

/// The room of a sandbox module (`sandbox::world::state` is `world`).
fn room(module: &str) -> Option<(&'static str, u8)> {
    let name = module.strip_prefix("sandbox::")?.split("::").next()?;
    SANDBOX_ROOMS.iter().find(|(room, _)| *room == name).copied()
}

fn layer(module: &str) -> Option<u8> {
    let top = module.split("::").next()?;
    LAYERS.iter().find(|(name, _)| *name == top).map(|(_, l)| *l)
}

/// Every `.rs` file below `dir`, as (module path, file).
fn modules(dir: &Path, prefix: &str, out: &mut Vec<(String, PathBuf)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        let join = |name: &str| {
            if prefix.is_empty() {
                name.to_owned()
            } else {
                format!("{prefix}::{name}")
            }
        };
        if path.is_dir() {
            if stem != "bin" {
                modules(&path, &join(&stem), out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            let module = match stem.as_str() {
                "mod" => prefix.to_owned(),
                "lib" if prefix.is_empty() => continue,
                _ => join(&stem),
            };
            out.push((module, path));
        }
    }
}

/// The code of a file without its comments and string literals (doc links
/// and generated-code templates name paths too); the lines of a literal
/// are kept as empty lines, so that the code has the file's lines.
fn code(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == 'r' && next == Some('#') && chars.get(i + 2) == Some(&'"') {
            let start = i;
            i += 3;
            while i < chars.len() && !(chars[i] == '"' && chars.get(i + 1) == Some(&'#')) {
                i += 1;
            }
            i += 2;
            let lines = chars[start..i.min(chars.len())].iter().filter(|c| **c == '\n').count();
            out.extend(std::iter::repeat_n('\n', lines));
        } else if c == '"' {
            let start = i;
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
            let lines = chars[start..i.min(chars.len())].iter().filter(|c| **c == '\n').count();
            out.extend(std::iter::repeat_n('\n', lines));
        } else if c == '\'' && chars.get(i + 2) == Some(&'\'') {
            i += 3; // a char literal such as '"'
        } else if c == '\'' && next == Some('\\') {
            i += 2;
            while i < chars.len() && chars[i] != '\'' {
                i += 1;
            }
            i += 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// The paths a `crate::`/`super::` reference names, braces expanded:
/// `crate::{a::B, c}` gives `a::B` and `c`.
fn paths_after(text: &str, start: usize) -> Vec<String> {
    fn parse(chars: &[char], i: &mut usize, prefix: &str, out: &mut Vec<String>) {
        let mut path = prefix.to_owned();
        loop {
            if chars.get(*i) == Some(&'{') {
                *i += 1;
                loop {
                    while chars.get(*i).is_some_and(|c| c.is_whitespace() || *c == ',') {
                        *i += 1;
                    }
                    if chars.get(*i).is_none_or(|c| *c == '}') {
                        *i += 1;
                        return;
                    }
                    parse(chars, i, &path, out);
                }
            }
            let begin = *i;
            while *i < chars.len() && (chars[*i].is_alphanumeric() || chars[*i] == '_') {
                *i += 1;
            }
            let ident: String = chars[begin..*i].iter().collect();
            if !ident.is_empty() {
                if !path.is_empty() {
                    path.push_str("::");
                }
                path.push_str(&ident);
            }
            if chars.get(*i..*i + 2) == Some(&[':', ':']) {
                *i += 2;
                continue;
            }
            out.push(path);
            // Skip an `as alias` and anything else up to the next separator.
            while chars
                .get(*i)
                .is_some_and(|c| !matches!(c, ',' | '}' | ';' | '(' | ')' | '<' | '>' | '\n'))
            {
                *i += 1;
            }
            return;
        }
    }
    let chars: Vec<char> = text[start..].chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    parse(&chars, &mut i, "", &mut out);
    out
}

/// Resolves a path to the longest module it names (`pipeline::execute::send` → `pipeline::execute`).
fn resolve(path: &str, known: &BTreeSet<String>, roots: &BTreeMap<String, String>) -> Option<String> {
    let parts: Vec<&str> = path.split("::").collect();
    for n in (1..=parts.len()).rev() {
        let candidate = parts[..n].join("::");
        if known.contains(&candidate) {
            return Some(candidate);
        }
    }
    roots.get(parts[0]).cloned()
}

/// The names a file declares as child modules in their own files
/// (`mod journal;`), and the spans of its inline modules (`mod tests { .. }`),
/// in which `super` is the file's own module.
fn declared_modules(code: &str) -> (Vec<String>, Vec<(usize, usize)>) {
    let bytes = code.as_bytes();
    let (mut children, mut inline) = (Vec::new(), Vec::new());
    for (at, _) in code.match_indices("mod ") {
        if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_') {
            continue;
        }
        let rest = &code[at + 4..];
        let name: String = rest
            .trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if name.is_empty() {
            continue;
        }
        let after = rest.trim_start()[name.len()..].trim_start();
        if after.starts_with(';') {
            children.push(name);
        } else if after.starts_with('{') {
            let open = code.len() - after.len();
            let mut depth = 0usize;
            let mut close = code.len();
            for (i, c) in code[open..].char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            close = open + i;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            inline.push((open, close));
        }
    }
    (children, inline)
}

/// Whether the text before `at` ends a path segment or an identifier (so
/// that `x` at `at` does not start a path of its own).
fn continues_a_path(code: &str, at: usize) -> bool {
    let before = &code.as_bytes()[..at];
    before
        .last()
        .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b':')
}

/// What the layer check found in a source tree: its modules, the import
/// graph between them, and what breaks the rules.
struct Scan {
    files: Vec<(String, PathBuf)>,
    edges: BTreeMap<String, BTreeSet<String>>,
    /// How many edges are a module's uses of its own children (`mod.rs`
    /// reaching into the modules it declares): they count like any other.
    child_uses: usize,
    problems: Vec<String>,
}

/// The paths a module's code names, each as the full path it stands for:
/// `crate::` paths, `super::` paths (from the module, or from an inline
/// module in it), and relative paths into the children it declares.
fn targets(module: &str, text: &str) -> Vec<(String, bool)> {
    let (children, inline) = declared_modules(text);
    let mut targets = Vec::new();
    for (at, _) in text.match_indices("crate::") {
        if !continues_a_path(text, at) {
            targets.extend(paths_after(text, at + "crate::".len()).into_iter().map(|p| (p, false)));
        }
    }
    // `super` is the parent of the module (of `pipeline` for `pipeline/mod.rs`),
    // or, inside an inline module (`mod tests`), the module itself.
    for (at, _) in text.match_indices("super::") {
        if continues_a_path(text, at) {
            continue;
        }
        let mut ups = 0usize;
        let mut after = at;
        while text[after..].starts_with("super::") {
            ups += 1;
            after += "super::".len();
        }
        let inside = inline.iter().filter(|(open, close)| *open < at && at < *close).count();
        let mut base: Vec<&str> = module.split("::").filter(|p| !p.is_empty()).collect();
        for _ in 0..ups.saturating_sub(inside) {
            base.pop();
        }
        let base = base.join("::");
        for path in paths_after(text, after) {
            targets.push((
                if base.is_empty() {
                    path
                } else {
                    format!("{base}::{path}")
                },
                false,
            ));
        }
    }
    // `journal::Entry` where the module declares `mod journal;`: a use of its child.
    let prefix = |name: &str| {
        if module.is_empty() {
            name.to_owned()
        } else {
            format!("{module}::{name}")
        }
    };
    for child in &children {
        let needle = format!("{child}::");
        for (at, _) in text.match_indices(&needle) {
            if continues_a_path(text, at) {
                continue;
            }
            for path in paths_after(text, at) {
                targets.push((prefix(&path), true));
            }
        }
    }
    targets
}

/// Checks the source tree at `src` against `LAYERS` and `SANDBOX_ROOMS`:
/// no import from a layer or a room above, and no import circle, a
/// module's uses of its own children included.
fn check(src: &Path) -> Scan {
    let mut files = Vec::new();
    modules(src, "", &mut files);
    let mut known: BTreeSet<String> = files.iter().map(|(m, _)| m.clone()).collect();
    known.insert("generated".into());

    // The crate root's re-exports: `crate::Client` is `generated`, and so on.
    let lib = code(&std::fs::read_to_string(src.join("lib.rs")).unwrap_or_default());
    let mut roots = BTreeMap::new();
    for (at, _) in lib.match_indices("pub use ") {
        for path in paths_after(&lib, at + "pub use ".len()) {
            let module = resolve(&path, &known, &BTreeMap::new()).unwrap_or_else(|| path.clone());
            let name = path.rsplit("::").next().unwrap_or_default().to_owned();
            roots.insert(name, module);
        }
    }

    let mut problems = Vec::new();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut child_uses = BTreeSet::new();
    for (module, file) in &files {
        // Build-time code: its `quote!` templates name the generated code's paths.
        if module.starts_with("codegen") {
            continue;
        }
        let Some(own) = layer(module) else {
            problems.push(format!(
                "{module}: not in any layer; add it to LAYERS and ARCHITECTURE.md"
            ));
            continue;
        };
        let text = code(&std::fs::read_to_string(file).unwrap_or_default());
        for (target, into_child) in targets(module, &text) {
            let Some(to) = resolve(&target, &known, &roots) else {
                continue;
            };
            // A module is part of the modules that contain it: its uses of
            // their items (`super::Call`, `crate::sandbox::SandboxOptions`
            // from inside `sandbox`) are no edge; their uses of it are.
            if to == *module || module.starts_with(&format!("{to}::")) {
                continue;
            }
            let Some(theirs) = layer(&to) else { continue };
            if theirs > own {
                problems.push(format!(
                    "{module} (layer {own}) imports {to} (layer {theirs}) through `{target}`"
                ));
            }
            if let (Some((mine, below)), Some((other, above))) = (room(module), room(&to))
                && above > below
            {
                problems.push(format!(
                    "{module} (the sandbox's {mine}) imports {to} (its {other}, a room above) through `{target}`"
                ));
            }
            if into_child {
                child_uses.insert((module.clone(), to.clone()));
            }
            edges.entry(module.clone()).or_default().insert(to);
        }
    }

    // No circle: a depth-first search that meets a module on its own path.
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        problems: &mut Vec<String>,
    ) {
        if let Some(i) = path.iter().position(|p| p == node) {
            problems.push(format!("import circle: {} -> {node}", path[i..].join(" -> ")));
            return;
        }
        if !done.insert(node.to_owned()) {
            return;
        }
        path.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            visit(next, edges, path, done, problems);
        }
        path.pop();
    }
    let mut done = BTreeSet::new();
    for node in edges.keys() {
        visit(node, &edges, &mut Vec::new(), &mut done, &mut problems);
    }
    Scan {
        files,
        edges,
        child_uses: child_uses.len(),
        problems,
    }
}

#[test]
fn modules_only_import_from_their_layer_or_below_and_never_in_a_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let Scan {
        files,
        edges,
        child_uses,
        problems,
    } = check(&src);
    assert!(problems.is_empty(), "layering broken:\n{}", problems.join("\n"));
    // The scan itself must see the layers it checks.
    assert!(
        edges
            .get("pipeline::execute")
            .is_some_and(|e| e.contains("pipeline::retry"))
    );
    assert!(
        edges
            .get("client::typed")
            .is_some_and(|e| e.contains("pipeline::prepare"))
    );
    assert!(edges.get("cli::call").is_some_and(|e| e.contains("generated")));
    assert!(
        edges
            .get("sandbox::face::flow")
            .is_some_and(|e| e.contains("sandbox::world::behaviour")),
        "the scan sees the sandbox's rooms"
    );
    // A module's uses of its own children are edges like any other.
    assert!(
        edges
            .get("sandbox::world::behaviour")
            .is_some_and(|e| e.contains("sandbox::world::behaviour::bundles")),
        "the scan sees a mod.rs reach into its children"
    );
    assert!(child_uses >= 10, "only {child_uses} uses of a child counted");
    for (name, _) in SANDBOX_ROOMS {
        assert!(
            files.iter().any(|(m, _)| m == &format!("sandbox::{name}")),
            "src/sandbox/ has no room `{name}`"
        );
    }
}

/// The longest a function of `src/sandbox/` may be, in lines (its
/// signature to its closing brace, comments and blank lines included).
const MAX_FUNCTION_LINES: usize = 120;

/// Every function of `text` with a body, as (name, first line, lines).
fn function_lengths(text: &str) -> Vec<(String, usize, usize)> {
    let code = code(text);
    let bytes = code.as_bytes();
    let mut out = Vec::new();
    for (at, _) in code.match_indices("fn ") {
        if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_') {
            continue;
        }
        let name: String = code[at + 3..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if name.is_empty() {
            continue;
        }
        let Some(open) = code[at..].find(['{', ';']).map(|o| at + o) else {
            continue;
        };
        if bytes[open] == b';' {
            continue;
        }
        let mut depth = 0usize;
        let mut close = None;
        for (i, b) in bytes.iter().enumerate().skip(open) {
            match b {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        close = Some(i);
                        break;
                    }
                }
                _ => {}
            }
        }
        let Some(close) = close else { continue };
        let first = code[..at].matches('\n').count() + 1;
        let lines = code[at..=close].matches('\n').count() + 1;
        out.push((name, first, lines));
    }
    out
}

#[test]
fn no_function_in_the_sandbox_is_over_120_lines() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    modules(&src.join("sandbox"), "sandbox", &mut files);
    assert!(files.len() > 20, "the sandbox's files are read");
    let mut long = Vec::new();
    for (_, file) in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (name, line, lines) in function_lengths(&text) {
            if lines > MAX_FUNCTION_LINES {
                long.push(format!("{}:{line}: `{name}` is {lines} lines", file.display()));
            }
        }
    }
    assert!(
        long.is_empty(),
        "functions over {MAX_FUNCTION_LINES} lines; split them into named parts:\n{}",
        long.join("\n")
    );
}

#[test]
fn function_lengths_count_from_the_signature_to_the_closing_brace() {
    let text = "fn short() {}\n/// doc\nfn three(a: u8) -> u8 {\n    let s = \"}\n\";\n    a\n}\ntrait T { fn bare(&self); }\ntype H = fn(u8);\n";
    let found = function_lengths(text);
    assert_eq!(
        found,
        [("short".to_owned(), 1, 1), ("three".to_owned(), 3, 5)],
        "a brace in a string is no brace; a body-less fn is no function"
    );
}

/// Copies the `.rs` files of `from` to `to`, folders kept.
fn copy_sources(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let (source, dest) = (entry.path(), to.join(entry.file_name()));
        if source.is_dir() {
            copy_sources(&source, &dest);
        } else if source.extension().is_some_and(|e| e == "rs") {
            std::fs::copy(&source, &dest).unwrap();
        }
    }
}

/// What the check finds in a copy of `src/` with `line` added to `file`,
/// and not in `src/` itself.
fn problems_of_mutant(name: &str, file: &str, line: &str) -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let tmp = option_env!("CARGO_TARGET_TMPDIR").map_or_else(std::env::temp_dir, PathBuf::from);
    let copy = tmp.join(format!("layers-mutant-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&copy);
    copy_sources(&src, &copy);
    let mutated = copy.join(file);
    let text = std::fs::read_to_string(&mutated).unwrap();
    assert!(
        !text.contains(line),
        "{file} has `{line}` already: the mutant would be no mutant"
    );
    std::fs::write(&mutated, format!("{line}\n{text}")).unwrap();
    let before: BTreeSet<String> = check(&src).problems.into_iter().collect();
    let after = check(&copy).problems;
    std::fs::remove_dir_all(&copy).unwrap();
    after.into_iter().filter(|p| !before.contains(p)).collect()
}

/// Asserts that `found` has an import circle naming every one of `names`.
fn assert_circle(found: &[String], names: &[&str]) {
    assert!(
        found
            .iter()
            .any(|p| p.starts_with("import circle:") && names.iter().all(|n| p.contains(n))),
        "no circle through {names:?} in {found:#?}"
    );
}

/// A circle made by hand in a copy fails the check: two modules of the
/// world that import each other.
#[test]
fn a_circle_made_in_a_copy_is_found() {
    let found = problems_of_mutant(
        "siblings",
        "sandbox/world/state.rs",
        "use crate::sandbox::world::manager::hand;",
    );
    assert_circle(&found, &["sandbox::world::state", "sandbox::world::manager"]);
}

/// The circle ARCHITECTURE.md once had unseen, made again in a copy: the
/// handlers' `mod.rs` reaches into `bundles`, which uses the manager, and
/// the manager reads the handlers' `mod.rs`. Only counting a `mod.rs`'s
/// uses of its own children sees it.
#[test]
fn a_circle_through_a_mod_rs_and_its_child_is_found() {
    let found = problems_of_mutant(
        "through-mod-rs",
        "sandbox/world/manager.rs",
        "use super::behaviour::run;",
    );
    assert_circle(
        &found,
        &[
            "sandbox::world::behaviour -> sandbox::world::behaviour::bundles",
            "sandbox::world::manager",
        ],
    );
}

#[test]
fn the_scanner_reads_grouped_and_nested_paths() {
    let text = "use crate::{a::B, c::{d, e::F as G}};";
    let start = text.find("crate::").unwrap() + "crate::".len();
    assert_eq!(paths_after(text, start), ["a::B", "c::d", "c::e::F"]);
    let text = "crate::pipeline::execute::send(x)";
    assert_eq!(paths_after(text, "crate::".len()), ["pipeline::execute::send"]);
    let stripped = code("let a = \"crate::x\"; // crate::y\nlet b = '\"'; crate::z::W");
    assert!(
        !stripped.contains("crate::x") && !stripped.contains("crate::y"),
        "{stripped}"
    );
    assert!(stripped.contains("crate::z::W"), "{stripped}");
    // A module's uses of its declared children, and `super` in an inline module.
    let text = "mod c;\nfn f() { c::D::new(); x::c::E; }\n#[cfg(test)]\nmod tests { use super::F; }\nuse super::G;";
    assert_eq!(
        targets("a::b", text),
        [
            ("a::b::F".to_owned(), false),
            ("a::G".to_owned(), false),
            ("a::b::c::D::new".to_owned(), true),
        ]
    );
}

/// The modules ARCHITECTURE.md's layer table names: (layer, top-level
/// module, the sub-modules it lists in parentheses, if any).
fn architecture_table() -> Vec<(u8, String, Option<BTreeSet<String>>)> {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("ARCHITECTURE.md")).unwrap();
    let mut rows = Vec::new();
    for line in doc.lines().filter(|l| l.starts_with("| ")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let Some(layer) = cells
            .get(1)
            .and_then(|c| c.split_whitespace().next()?.parse::<u8>().ok())
        else {
            continue;
        };
        let Some(cell) = cells.get(2) else { continue };
        let (mut depth, mut token, mut inside) = (0usize, String::new(), false);
        // The last name read at each depth: a folder's parts in parentheses
        // are named by their path below the top module (`face/` (`flow`) is
        // `face/flow`).
        let mut last: Vec<String> = Vec::new();
        for c in cell.chars() {
            match c {
                '`' if inside => {
                    inside = false;
                    let name = std::mem::take(&mut token);
                    if name.contains("src/") || name.contains('*') {
                        continue;
                    }
                    last.truncate(depth);
                    if depth == 0 {
                        rows.push((layer, name.trim_end_matches('/').to_owned(), None));
                        last.push(String::new());
                    } else if let Some((_, _, children)) = rows.last_mut() {
                        let parent = last.get(depth - 1).cloned().unwrap_or_default();
                        let path = format!("{parent}{name}");
                        children.get_or_insert_with(BTreeSet::new).insert(path.clone());
                        last.push(path);
                    }
                }
                '`' => inside = true,
                '(' if !inside => depth += 1,
                ')' if !inside => depth -= 1,
                _ if inside => token.push(c),
                _ => {}
            }
        }
    }
    rows
}

#[test]
fn architecture_md_names_the_modules_of_src_in_their_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let table = architecture_table();
    let mut problems = Vec::new();
    // A module may be named in more than one row (`generated`: the client
    // struct in layer 4, its builders in layer 5); its own layer must be one.
    let mut documented: BTreeMap<&str, BTreeSet<u8>> = BTreeMap::new();
    for (layer, module, _) in &table {
        documented.entry(module.as_str()).or_default().insert(*layer);
    }
    for (module, layer) in LAYERS.iter().filter(|(m, _)| *m != "codegen") {
        match documented.get(module) {
            Some(layers) if layers.contains(layer) => {}
            Some(layers) => problems.push(format!(
                "`{module}` is in layer {layer} in tests/layers.rs, {layers:?} in ARCHITECTURE.md"
            )),
            None => problems.push(format!(
                "`{module}` is in tests/layers.rs but not in ARCHITECTURE.md's table"
            )),
        }
    }
    for module in documented.keys() {
        if !LAYERS.iter().any(|(m, _)| m == module) {
            problems.push(format!(
                "`{module}` is in ARCHITECTURE.md's table but not in tests/layers.rs"
            ));
        }
    }
    for (_, module, children) in &table {
        let Some(children) = children else { continue };
        if !src.join(module).is_dir() {
            problems.push(format!(
                "ARCHITECTURE.md lists parts of `{module}/`, which is not a folder of src/"
            ));
            continue;
        }
        // The folder's files and folders, and those of every sub-folder whose
        // parts the table lists too.
        let mut actual = BTreeSet::new();
        let mut folders = vec![String::new()];
        while let Some(below) = folders.pop() {
            let Ok(entries) = std::fs::read_dir(src.join(module).join(&below)) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let Some(stem) = path.file_stem().map(|s| s.to_string_lossy().into_owned()) else {
                    continue;
                };
                if path.is_dir() {
                    let folder = format!("{below}{stem}/");
                    if children.iter().any(|c| c.starts_with(&folder) && *c != folder) {
                        folders.push(folder.clone());
                    }
                    actual.insert(folder);
                } else if path.extension().is_some_and(|x| x == "rs") && stem != "mod" {
                    actual.insert(format!("{below}{stem}"));
                }
            }
        }
        let listed: BTreeSet<String> = children.iter().filter(|c| !c.ends_with("mod")).cloned().collect();
        for missing in actual.difference(&listed) {
            problems.push(format!("src/{module}/{missing} is not in ARCHITECTURE.md's table"));
        }
        for extra in listed.difference(&actual) {
            problems.push(format!(
                "ARCHITECTURE.md lists `{extra}` under `{module}/`, which src/ does not have"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "ARCHITECTURE.md and src/ disagree:\n{}",
        problems.join("\n")
    );
}
