//! `--jq EXPR`: a jq filter over the answer, run by jaq's interpreter with
//! jq's standard library, so nobody needs jq installed (as `gh --jq`).
//!
//! The filter is compiled when the flags are read, before anything is sent:
//! a typo never costs a call. As with `gh`, a string result prints raw and
//! any other result as JSON, one result a line.

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars, data, unwrap_valr};
use jaq_json::Val;
use serde::Deserialize;
use serde_json::Value;

use super::exit::Failure;

type Filter = jaq_core::Filter<data::JustLut<Val>>;

/// A compiled `--jq` filter.
pub(crate) struct Jq {
    filter: Filter,
}

/// One result of a filter.
#[derive(Debug, PartialEq)]
pub(crate) enum Output {
    /// A string, printed as it is.
    Raw(String),
    /// Anything else, printed as JSON.
    Json(Value),
}

impl Jq {
    /// Compiles `code`, or a usage error naming what jaq expected where.
    pub(crate) fn compile(code: &str) -> Result<Self, Failure> {
        let defs = jaq_core::defs().chain(jaq_std::defs()).chain(jaq_json::defs());
        let funs = jaq_core::funs().chain(jaq_std::funs()).chain(jaq_json::funs());
        let arena = Arena::default();
        let modules = Loader::new(defs)
            .load(&arena, File { code, path: () })
            .map_err(|errors| {
                let why = errors
                    .into_iter()
                    .flat_map(|(_, e)| match e {
                        jaq_core::load::Error::Io(v) => v.into_iter().map(|(_, m)| m).collect::<Vec<_>>(),
                        jaq_core::load::Error::Lex(v) => v
                            .into_iter()
                            .map(|(expect, at)| format!("expected {} at `{}`", expect.as_str(), near(at)))
                            .collect(),
                        jaq_core::load::Error::Parse(v) => v
                            .into_iter()
                            .map(|(expect, at)| format!("expected {} at `{}`", expect.as_str(), near(at)))
                            .collect(),
                    })
                    .collect::<Vec<_>>()
                    .join("; ");
                Failure::usage(format!("--jq {code:?} does not parse: {why}"))
            })?;
        let filter = Compiler::default().with_funs(funs).compile(modules).map_err(|errors| {
            let why = errors
                .into_iter()
                .flat_map(|(_, undefined)| undefined)
                .map(|(name, what)| format!("{name} is not a defined {}", what.as_str()))
                .collect::<Vec<_>>()
                .join("; ");
            Failure::usage(format!("--jq {code:?} does not compile: {why}"))
        })?;
        Ok(Self { filter })
    }

    /// Runs the filter on `input`: its results, or the first error it raised.
    pub(crate) fn run(&self, input: &Value) -> Result<Vec<Output>, Failure> {
        let input = Val::deserialize(input).map_err(|e| jq_failure(format!("the answer is not jq input: {e}")))?;
        let ctx = Ctx::<data::JustLut<Val>>::new(&self.filter.lut, Vars::new([]));
        let mut outputs = Vec::new();
        for result in self.filter.id.run((ctx, input)).map(unwrap_valr) {
            let value = result.map_err(|e| jq_failure(format!("--jq: {e}")))?;
            outputs.push(match value {
                Val::TStr(s) => Output::Raw(String::from_utf8_lossy(&s).into_owned()),
                other => {
                    let text = other.to_string();
                    Output::Json(serde_json::from_str(&text).unwrap_or(Value::String(text)))
                }
            });
        }
        Ok(outputs)
    }
}

/// The first characters where the parser stopped.
fn near(at: &str) -> String {
    let mut shown: String = at.chars().take(20).collect();
    if shown.is_empty() {
        shown.push_str("the end");
    }
    shown
}

/// A filter that failed on the answer. The answer may have been paid for:
/// the caller writes it whole instead, and this says so.
fn jq_failure(message: String) -> Failure {
    Failure {
        code: super::exit::EXIT_API,
        message: format!("error: {message}; the whole answer was written instead"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_raw_and_the_rest_as_json() {
        let jq = Jq::compile(".data[] | select(.videos > 1) | .id, {n: .videos}").unwrap();
        let input = json!({"data": [{"id": "b1", "videos": 1}, {"id": "b2", "videos": 3}]});
        assert_eq!(
            jq.run(&input).unwrap(),
            [Output::Raw("b2".into()), Output::Json(json!({"n": 3}))]
        );
    }

    #[test]
    fn the_standard_library_is_there() {
        let jq = Jq::compile("[.data[].videos] | add, (map(tostring) | join(\",\"))").unwrap();
        let input = json!({"data": [{"videos": 1}, {"videos": 3}]});
        assert_eq!(
            jq.run(&input).unwrap(),
            [Output::Json(json!(4)), Output::Raw("1,3".into())]
        );
    }

    #[test]
    fn a_bad_filter_is_refused_before_anything_is_sent() {
        let parse = Jq::compile(".data[").err().unwrap();
        assert_eq!(parse.code, super::super::exit::EXIT_USAGE);
        assert!(parse.message.contains("does not parse"), "{}", parse.message);
        let undefined = Jq::compile("nosuchfilter").err().unwrap();
        assert!(undefined.message.contains("nosuchfilter"), "{}", undefined.message);
    }

    #[test]
    fn an_error_raised_on_the_answer_says_it_is_not_lost() {
        let jq = Jq::compile(".data | error(\"boom\")").unwrap();
        let e = jq.run(&json!({"data": 1})).unwrap_err();
        assert!(
            e.message.contains("boom") && e.message.contains("whole answer"),
            "{}",
            e.message
        );
    }
}
