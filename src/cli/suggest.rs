//! One suggestion for a typo, the closest, in either form of a command
//! (`list-bundle` → `list-bundles`, `bundle lst` → `bundles list`) and for
//! an enum value (`acount_only` → `account_only`).
//!
//! The distance is strsim's Jaro-Winkler (the crate clap's own
//! suggestions use), which favours a shared start as typos keep it; clap's
//! message lists every candidate above its threshold, in no useful order,
//! so the CLI replaces it for an unknown command.

use clap::Command;

use crate::operations::OPERATIONS;

/// Below this similarity, nothing is suggested.
const AT_LEAST: f64 = 0.75;

/// The candidate closest to `given`, if one is close enough.
pub(crate) fn closest<'a>(given: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let given = given.to_ascii_lowercase();
    let mut best: Option<(f64, &'a str)> = None;
    for candidate in candidates {
        let score = strsim::jaro_winkler(&given, &candidate.to_ascii_lowercase());
        if score >= AT_LEAST && best.is_none_or(|(b, _)| score > b) {
            best = Some((score, candidate));
        }
    }
    best.map(|(_, c)| c)
}

/// Every name a command is run by: the flat names, the noun-verb forms.
fn every_command() -> Vec<String> {
    let mut names: Vec<String> = OPERATIONS.iter().map(|op| op.cli_command.to_owned()).collect();
    for (_, nouns, verb) in super::nouns::TREE {
        names.push(format!("{} {verb}", nouns.join(" ")));
    }
    names
}

/// The command closest to `given` (one word or several), in either form.
pub(crate) fn closest_command(given: &str) -> Option<String> {
    let names = every_command();
    closest(given, names.iter().map(String::as_str)).map(str::to_owned)
}

/// The message for an unknown command in `args` (the program name first):
/// the word that is not a command, and the one closest to what was typed.
/// `None` when `args` name no unknown command.
pub(crate) fn unknown_command(root: &Command, args: &[String]) -> Option<String> {
    let mut cmd = root;
    let mut path: Vec<String> = Vec::new();
    let mut words = args.iter().skip(1).peekable();
    while let Some(word) = words.next() {
        if let Some(long) = word.strip_prefix("--") {
            let takes_value = cmd
                .get_arguments()
                .find(|a| a.get_long() == Some(long))
                .is_some_and(|a| a.get_action().takes_values());
            if takes_value && !long.contains('=') {
                words.next();
            }
            continue;
        }
        if word.starts_with('-') {
            continue;
        }
        if let Some(sub) = cmd.find_subcommand(word) {
            path.push(sub.get_name().to_owned());
            cmd = sub;
            continue;
        }
        let here: Vec<String> = cmd
            .get_subcommands()
            .filter(|s| !s.is_hide_set())
            .map(|s| s.get_name().to_owned())
            .collect();
        // What was typed from here on, for a noun-verb form at the top.
        let next = words.find(|w| !w.starts_with('-'));
        let mut candidates: Vec<String> = here.clone();
        let mut typed = vec![word.clone()];
        if path.is_empty() {
            candidates.extend(every_command());
        }
        let two = next.map(|n| format!("{word} {n}"));
        let best = {
            let one = closest(word, candidates.iter().map(String::as_str)).map(str::to_owned);
            let both = two
                .as_deref()
                .and_then(|t| closest(t, candidates.iter().filter(|c| c.contains(' ')).map(String::as_str)))
                .map(str::to_owned);
            match (one, both) {
                (Some(one), Some(both)) => {
                    let t = two.as_deref().unwrap_or_default();
                    if strsim::jaro_winkler(t, &both) > strsim::jaro_winkler(word, &one) {
                        typed.push(next.cloned().unwrap_or_default());
                        Some(both)
                    } else {
                        Some(one)
                    }
                }
                (one, None) => one,
                (None, both) => {
                    typed.push(next.cloned().unwrap_or_default());
                    both
                }
            }
        };
        // A noun (`bundle` → `bundles`) with a verb typed after it: the
        // closest verb of that noun too (`bundles list`).
        let best = match (best, next) {
            (Some(noun), Some(verb)) if typed.len() == 1 => match cmd.find_subcommand(&noun) {
                Some(sub) if sub.has_subcommands() => {
                    let verbs: Vec<&str> = sub.get_subcommands().map(|s| s.get_name()).collect();
                    match closest(verb, verbs) {
                        Some(v) => {
                            typed.push(verb.clone());
                            Some(format!("{noun} {v}"))
                        }
                        None => Some(noun),
                    }
                }
                _ => Some(noun),
            },
            (best, _) => best,
        };
        let prefix = if path.is_empty() {
            "tokportal".to_owned()
        } else {
            format!("tokportal {}", path.join(" "))
        };
        let mut text = format!("error: `{}` is not a command of `{prefix}`", typed.join(" "));
        match best {
            Some(best) => text.push_str(&format!("\n\n  tip: did you mean `{prefix} {best}`?")),
            None => text.push_str(&format!("\n\n  `{prefix} --help` lists them")),
        }
        return Some(text);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_suggestion_the_closest() {
        assert_eq!(closest_command("list-bundle").as_deref(), Some("list-bundles"));
        assert_eq!(closest_command("bundle list").as_deref(), Some("bundles list"));
        let root = crate::cli::cli();
        let args = |words: &[&str]| {
            std::iter::once("tokportal")
                .chain(words.iter().copied())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        let said = unknown_command(&root, &args(&["bundle", "lst"])).unwrap();
        assert!(said.contains("did you mean `tokportal bundles list`?"), "{said}");
        let said = unknown_command(&root, &args(&["list-bundle"])).unwrap();
        assert!(said.contains("did you mean `tokportal list-bundles`?"), "{said}");
        assert_eq!(said.matches("did you mean").count(), 1);
        assert_eq!(
            closest("acount_only", ["account_only", "account_and_videos", "videos_only"]),
            Some("account_only")
        );
        assert_eq!(closest("zzzz", ["account_only"]), None);
    }
}
