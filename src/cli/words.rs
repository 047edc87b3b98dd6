//! The words a person reads: CLI commands named as the CLI spells them
//! (`list-countries`, not the contract's `listCountries`), and help text
//! without runs of blank lines.

use crate::operations::OPERATIONS;

/// `text` with every operationId that stands as a word replaced by its
/// command (`see listCountries` → `see list-countries`). JSON below the
/// human lines (an error's payload, from the server) is left as it came.
pub(crate) fn commands_not_ids(text: &str) -> String {
    let (human, json) = match text.find("\n{") {
        Some(at) => text.split_at(at),
        None if text.starts_with('{') => return text.to_owned(),
        None => (text, ""),
    };
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        match OPERATIONS.iter().find(|op| op.id == word.as_str()) {
            Some(op) => out.push_str(op.cli_command),
            None => out.push_str(word),
        }
        word.clear();
    };
    for c in human.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out.push_str(json);
    out
}

/// `text` with each run of blank lines made one, and no blank line at its start.
pub(crate) fn squeeze_blank_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = true;
    for line in text.split_inclusive('\n') {
        let is_blank = line.trim().is_empty();
        if is_blank && blank {
            continue;
        }
        blank = is_blank;
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_ids_read_as_commands_outside_json() {
        assert_eq!(
            commands_not_ids("country: is not a country the sandbox sells; see listCountries"),
            "country: is not a country the sandbox sells; see list-countries"
        );
        assert_eq!(
            commands_not_ids("X: see listCountries\n{\"m\": \"listCountries\"}"),
            "X: see list-countries\n{\"m\": \"listCountries\"}"
        );
        assert_eq!(commands_not_ids("mylistCountriesx"), "mylistCountriesx");
    }

    #[test]
    fn one_blank_line_at_most() {
        assert_eq!(
            squeeze_blank_lines("\nUsage: x\n\n\n\nOptions:\n"),
            "Usage: x\n\nOptions:\n"
        );
    }
}
