//! The layers of ARCHITECTURE.md, checked: every `crate::`, `super::` and
//! root re-export a module of `src/` names points at its own layer or one
//! below, and the module graph has no circle; and ARCHITECTURE.md's layer
//! table names the same modules, in the same layers, as `LAYERS` here and
//! the files of `src/`.
//!
//! Hand-rolled on purpose: a few dozen lines of path scanning over our own
//! sources, where a Rust parser crate would only add build time to `cargo test`.

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
const SANDBOX_ROOMS: &[(&str, u8)] = &[("contract", 0), ("workbench", 1), ("world", 2), ("face", 3)];

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
/// and generated-code templates name paths too).
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
            i += 3;
            while i < chars.len() && !(chars[i] == '"' && chars.get(i + 1) == Some(&'#')) {
                i += 1;
            }
            i += 2;
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
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

#[test]
fn modules_only_import_from_their_layer_or_below_and_never_in_a_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    modules(&src, "", &mut files);
    let mut known: BTreeSet<String> = files.iter().map(|(m, _)| m.clone()).collect();
    known.insert("generated".into());

    // The crate root's re-exports: `crate::Client` is `generated`, and so on.
    let lib = code(&std::fs::read_to_string(src.join("lib.rs")).unwrap());
    let mut roots = BTreeMap::new();
    for (at, _) in lib.match_indices("pub use ") {
        for path in paths_after(&lib, at + "pub use ".len()) {
            let module = resolve(&path, &known, &BTreeMap::new()).unwrap_or_else(|| path.clone());
            let name = path.rsplit("::").next().unwrap().to_owned();
            roots.insert(name, module);
        }
    }

    let mut problems = Vec::new();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
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
        let text = code(&std::fs::read_to_string(file).unwrap());
        let is_mod_rs = file.ends_with("mod.rs");
        let parent = module.rsplit_once("::").map_or("", |(p, _)| p).to_owned();
        let mut targets = Vec::new();
        for (at, _) in text.match_indices("crate::") {
            targets.extend(paths_after(&text, at + "crate::".len()));
        }
        // `super` is the parent of the module (of `pipeline` for `pipeline/mod.rs`).
        for (at, _) in text.match_indices("super::") {
            for path in paths_after(&text, at + "super::".len()) {
                targets.push(if parent.is_empty() {
                    path
                } else {
                    format!("{parent}::{path}")
                });
            }
        }
        for target in targets {
            let Some(to) = resolve(&target, &known, &roots) else {
                continue;
            };
            // A module owns its children: `mod.rs` declaring and re-exporting them is no dependency.
            if to == *module || (is_mod_rs && to.starts_with(&format!("{module}::"))) {
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
    for (name, _) in SANDBOX_ROOMS {
        assert!(
            files.iter().any(|(m, _)| m == &format!("sandbox::{name}")),
            "src/sandbox/ has no room `{name}`"
        );
    }
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
