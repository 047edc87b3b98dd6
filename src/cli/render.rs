//! How an answer is shown: for a person at a terminal, a list as a table
//! sized to it and anything else as indented, coloured JSON; in a pipe,
//! exactly what the CLI always printed (compact JSON, `--all-pages` one item
//! a line), so that no script breaks. `--format json|table|ndjson|csv`
//! forces one, and `--jq` filters first (see [`super::jq`]).
//!
//! Colour follows the conventions every terminal tool shares: `NO_COLOR`
//! (any value) turns it off, else `CLICOLOR_FORCE` (anything but `0`) turns
//! it on in a pipe too; `NO_COLOR` wins when both are set.
//!
//! The contract types no list item, so the table's columns are this CLI's
//! choice, per list operation, from the fields TokPortal's answers carry; a
//! column an answer lacks is left blank, and a list this module does not
//! know shows the first scalar fields of its first item.

use std::io::IsTerminal;

use comfy_table::{Attribute, Cell, ColumnConstraint, ContentArrangement, LineStyle, Table, TableStyle};
use serde_json::Value;

use super::exit::Failure;
use super::jq::{Jq, Output};

/// What `--format` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// JSON: indented at a terminal, compact in a pipe.
    Json,
    /// A table of a list's items (a single resource: its fields, one a row).
    Table,
    /// One compact JSON value a line: a list's items, or the answer.
    Ndjson,
    /// A header and one row an item; nested values as compact JSON.
    Csv,
}

impl Format {
    /// The names `--format` takes.
    pub(crate) const NAMES: [&'static str; 4] = ["json", "table", "ndjson", "csv"];

    /// The format `name` names (one of [`Format::NAMES`]).
    pub(crate) fn named(name: &str) -> Option<Self> {
        Some(match name {
            "json" => Self::Json,
            "table" => Self::Table,
            "ndjson" => Self::Ndjson,
            "csv" => Self::Csv,
            _ => return None,
        })
    }
}

/// At most this many items are held for one table (`--all-pages` at a
/// terminal); beyond it, the table says how to get the rest as a stream.
pub(crate) const TABLE_ROWS: usize = 10_000;

/// How this call's answer is shown, decided before anything is sent.
pub(crate) struct Shape {
    format: Option<Format>,
    jq: Option<Jq>,
    /// The answer goes to a terminal (stdout, no `--output`).
    terminal: bool,
    compact: bool,
    colour: bool,
}

impl Shape {
    /// The shape from `--format`, `--jq` and `--compact`, for stdout or a
    /// file. `--jq` with a format other than JSON is refused here.
    pub(crate) fn new(format: Option<Format>, jq: Option<&str>, compact: bool, to_file: bool) -> Result<Self, Failure> {
        let jq = jq.map(Jq::compile).transpose()?;
        if jq.is_some() && format.is_some_and(|f| f != Format::Json) {
            return Err(Failure::usage(
                "--jq gives JSON: it cannot be used with --format table, ndjson or csv",
            ));
        }
        let terminal = !to_file && std::io::stdout().is_terminal();
        Ok(Self {
            format,
            jq,
            terminal,
            compact,
            colour: !to_file && colour(terminal),
        })
    }

    /// True when the answer is shown as it came (no format, no filter): a
    /// read-only answer for a file may then be streamed into it.
    pub(crate) fn is_plain(&self) -> bool {
        self.format.is_none() && self.jq.is_none()
    }

    /// True when every page of `--all-pages` is held to draw one table.
    fn tables_pages(&self) -> bool {
        self.jq.is_none() && (self.format == Some(Format::Table) || (self.format.is_none() && self.terminal))
    }

    fn pretty(&self) -> bool {
        self.terminal && !self.compact
    }

    /// One whole answer of the operation `op` (its id), as the text to write.
    pub(crate) fn answer(&self, op: &str, body: &Value) -> Result<String, Failure> {
        if let Some(jq) = &self.jq {
            return self.jq_lines(jq, body);
        }
        // A list is `data` holding objects; by default, a table for the
        // answer of a list (a read: `list-countries` as `list-bundles`),
        // paged or not, not for whatever else answers with an array (what a
        // bulk create made stays JSON, its charge beside it).
        let list = body
            .get("data")
            .and_then(Value::as_array)
            .filter(|items| items.iter().all(Value::is_object));
        let pages = body.get("pagination").is_some()
            || curated(op).is_some()
            || crate::operations::find(op).is_some_and(|o| o.method.is_read_only());
        Ok(match (self.format, list) {
            (None, Some(_)) if !pages => self.json(body, self.pretty()) + "\n",
            (None, Some(items)) if self.terminal => table(op, items, footer(body), self.colour),
            (None | Some(Format::Json), _) => self.json(body, self.pretty()) + "\n",
            (Some(Format::Table), Some(items)) => table(op, items, footer(body), self.colour),
            (Some(Format::Table), None) => fields_table(body.get("data").unwrap_or(body), self.colour),
            (Some(Format::Ndjson), Some(items)) => items.iter().map(|i| self.json(i, false) + "\n").collect(),
            (Some(Format::Ndjson), None) => self.json(body, false) + "\n",
            (Some(Format::Csv), Some(items)) => csv(op, items)?,
            (Some(Format::Csv), None) => csv(op, std::slice::from_ref(body.get("data").unwrap_or(body)))?,
        })
    }

    fn jq_lines(&self, jq: &Jq, body: &Value) -> Result<String, Failure> {
        let mut text = String::new();
        for output in jq.run(body)? {
            match output {
                Output::Raw(s) => text.push_str(&s),
                Output::Json(v) => text.push_str(&self.json(&v, self.pretty())),
            }
            text.push('\n');
        }
        Ok(text)
    }

    fn json(&self, value: &Value, pretty: bool) -> String {
        use colored_json::{ColorMode, ColoredFormatter};
        use serde_json::ser::{CompactFormatter, PrettyFormatter};
        let text = match (pretty, self.colour) {
            (true, true) => ColoredFormatter::new(PrettyFormatter::new()).to_colored_json(value, ColorMode::On),
            (false, true) => ColoredFormatter::new(CompactFormatter).to_colored_json(value, ColorMode::On),
            (true, false) => serde_json::to_string_pretty(value),
            (false, false) => serde_json::to_string(value),
        };
        // A `Value` always serializes; the fallback is never reached.
        text.unwrap_or_default()
    }

    /// `--all-pages`: how its pages are written, page by page.
    pub(crate) fn pages<'s>(&'s self, op: &'s str) -> Pages<'s> {
        Pages {
            shape: self,
            op,
            held: Vec::new(),
            left_out: 0,
            started: false,
            columns: None,
        }
    }
}

/// Whether to colour a stream that is (or is not) a terminal.
fn colour(terminal: bool) -> bool {
    colour_with(terminal, |name| std::env::var_os(name))
}

fn colour_with(terminal: bool, var: impl Fn(&str) -> Option<std::ffi::OsString>) -> bool {
    let set = |name: &str| var(name).filter(|v| !v.is_empty());
    if set("NO_COLOR").is_some() {
        false
    } else if let Some(force) = set("CLICOLOR_FORCE") {
        force != "0"
    } else {
        terminal
    }
}

/// `--all-pages`, written as the pages come: one item a line (as always in a
/// pipe), one JSON array, CSV rows, the filter's results per page, or, for a
/// table, the items held (at most [`TABLE_ROWS`]) until the last page.
pub(crate) struct Pages<'a> {
    shape: &'a Shape,
    op: &'a str,
    held: Vec<Value>,
    left_out: u64,
    started: bool,
    columns: Option<Vec<String>>,
}

impl Pages<'_> {
    /// The text for one page. `--jq` filters the page as it reads as one
    /// call's answer (`{"data", "pagination"}`), built for it only.
    pub(crate) fn page(&mut self, page: crate::pagination::Page) -> Result<String, Failure> {
        let shape = self.shape;
        if let Some(jq) = &shape.jq {
            let body = serde_json::json!({
                "data": page.items,
                "pagination": {"page": page.page, "total": page.total, "total_pages": page.total_pages},
            });
            return shape.jq_lines(jq, &body);
        }
        let items = page.items;
        if shape.tables_pages() {
            for item in items {
                if self.held.len() < TABLE_ROWS {
                    self.held.push(item);
                } else {
                    self.left_out += 1;
                }
            }
            return Ok(String::new());
        }
        let mut text = String::new();
        match shape.format {
            Some(Format::Json) => {
                for item in &items {
                    text.push_str(if self.started { ",\n" } else { "[\n" });
                    self.started = true;
                    text.push_str(&shape.json(item, false));
                }
            }
            Some(Format::Csv) => {
                let columns = self.columns.get_or_insert_with(|| csv_columns(self.op, &items));
                text = csv_rows(columns, &items, !self.started)?;
                self.started |= !items.is_empty();
            }
            _ => {
                for item in &items {
                    text.push_str(&shape.json(item, false));
                    text.push('\n');
                }
            }
        }
        Ok(text)
    }

    /// What is written after the last page.
    pub(crate) fn finish(self) -> String {
        let shape = self.shape;
        if shape.tables_pages() {
            let count = self.held.len() as u64 + self.left_out;
            let mut foot = format!("{count} item{}", if count == 1 { "" } else { "s" });
            if self.left_out > 0 {
                foot.push_str(&format!(
                    "; the first {TABLE_ROWS} shown: --format ndjson or csv streams them all"
                ));
            }
            return table(self.op, &self.held, Some(foot), shape.colour);
        }
        match shape.format {
            Some(Format::Json) if self.started => "\n]\n".into(),
            Some(Format::Json) => "[]\n".into(),
            _ => String::new(),
        }
    }
}

/// The useful columns of a list operation's items: (header, field).
fn curated(op: &str) -> Option<&'static [(&'static str, &'static str)]> {
    const BUNDLES: &[(&str, &str)] = &[
        ("ID", "id"),
        ("STATUS", "status"),
        ("COUNTRY", "country"),
        ("PLATFORM", "platform"),
        ("ACCOUNT STATUS", "account_status"),
        ("VIDEOS", "videos_quantity"),
        ("CREATED", "created_at"),
    ];
    Some(match op {
        "listBundles" | "listAccountBundles" => BUNDLES,
        "listAccounts" => &[
            ("ID", "id"),
            ("PLATFORM", "platform"),
            ("COUNTRY", "country"),
            ("USERNAME", "username"),
            ("STATUS", "status"),
            ("DELIVERED", "delivered_at"),
        ],
        "listCreditTransactions" => &[
            ("ID", "id"),
            ("TYPE", "type"),
            ("AMOUNT", "amount"),
            ("BALANCE", "balance_after"),
            ("DESCRIPTION", "description"),
            ("CREATED", "created_at"),
        ],
        "listWebhookEndpoints" => &[
            ("ID", "id"),
            ("URL", "url"),
            ("ENABLED", "enabled"),
            ("EVENTS", "events"),
            ("CREATED", "created_at"),
        ],
        "listWebhookDeliveries" => &[
            ("ID", "id"),
            ("EVENT", "event_type"),
            ("STATUS", "status"),
            ("ATTEMPTS", "attempts"),
            ("HTTP", "response_status"),
            ("NEXT RETRY", "next_retry_at"),
            ("CREATED", "created_at"),
        ],
        "listCommentTasks" => &[
            ("ID", "id"),
            ("STATUS", "status"),
            ("ACCOUNT", "account_id"),
            ("CREATED", "created_at"),
        ],
        _ => return None,
    })
}

/// The columns of a list this module does not know: `id` first, then the
/// first scalar fields of its first item, at most eight.
fn discovered(items: &[Value]) -> Vec<(String, String)> {
    let Some(first) = items.first().and_then(Value::as_object) else {
        return Vec::new();
    };
    let scalar = |v: &Value| !(v.is_object() || v.is_array());
    let mut fields: Vec<&String> = first.iter().filter(|(_, v)| scalar(v)).map(|(k, _)| k).collect();
    if let Some(at) = fields.iter().position(|k| *k == "id") {
        let id = fields.remove(at);
        fields.insert(0, id);
    }
    fields
        .into_iter()
        .take(8)
        .map(|k| (k.to_uppercase().replace('_', " "), k.clone()))
        .collect()
}

/// `pagination`'s "page 1 of 3 · 25 of 61", when the answer has it.
fn footer(body: &Value) -> Option<String> {
    let p = body.get("pagination")?;
    let n = |k: &str| p.get(k).and_then(Value::as_u64);
    let shown = body.get("data").and_then(Value::as_array).map_or(0, Vec::len);
    let mut foot = match (n("page"), n("total_pages")) {
        (Some(page), Some(pages)) => format!("page {page} of {pages}"),
        (Some(page), None) => format!("page {page}"),
        _ => String::new(),
    };
    if let Some(total) = n("total") {
        if !foot.is_empty() {
            foot.push_str(" · ");
        }
        foot.push_str(&format!("{shown} of {total}"));
    }
    if n("total_pages").is_some_and(|pages| pages > 1) {
        foot.push_str(" · --all-pages for every page");
    }
    (!foot.is_empty()).then_some(foot)
}

/// A table cell: a scalar as it reads, a timestamp to the minute, a list of
/// scalars joined, anything else as compact JSON.
fn cell_text(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => timestamp(s).unwrap_or_else(|| s.clone()),
        Some(Value::Array(items)) if items.iter().all(|v| !(v.is_object() || v.is_array())) => {
            items.iter().map(|v| cell_text(Some(v))).collect::<Vec<_>>().join(", ")
        }
        Some(other) => other.to_string(),
    }
}

/// `2026-12-04T18:41:39.123Z` as `2026-12-04 18:41`: a person reads the
/// minute; the whole value stays in `--format json`.
fn timestamp(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let shaped = b.len() >= 16
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && [0..4, 5..7, 8..10, 11..13, 14..16]
            .iter()
            .all(|r| b[r.clone()].iter().all(u8::is_ascii_digit));
    shaped.then(|| format!("{} {}", &s[..10], &s[11..16]))
}

/// Lines above and below, one under the header, none between rows: as `gh`
/// and `kubectl` print lists, with room for the data.
const STYLE: TableStyle = TableStyle::new()
    .top_border(LineStyle::none().fill('─').junction('─'))
    .header_separator(LineStyle::none().fill('─').junction('─'))
    .bottom_border(LineStyle::none().fill('─').junction('─'));

fn new_table(colour: bool) -> Table {
    let mut table = Table::new();
    table
        .load_style(STYLE)
        .set_content_arrangement(ContentArrangement::Dynamic);
    // The terminal's width, read before styling is decided: comfy-table
    // measures only a terminal it may also style.
    // A pty whose size nobody set says 0 columns: no width, no wrapping.
    let width = table.width().filter(|w| *w >= 20);
    if colour {
        table.enforce_styling();
    } else {
        table.force_no_tty();
    }
    match width {
        Some(width) => table.set_width(width),
        None => table.set_content_arrangement(ContentArrangement::Disabled),
    };
    table
}

fn header(names: impl IntoIterator<Item = String>, colour: bool) -> Vec<Cell> {
    names
        .into_iter()
        .map(|name| {
            let cell = Cell::new(name);
            if colour {
                cell.add_attribute(Attribute::Bold)
            } else {
                cell
            }
        })
        .collect()
}

/// A list's items as a table, with its footer below.
///
/// Ids are never wrapped (the id column keeps its whole width). When the
/// terminal is too narrow for every column, columns are left out until the
/// rest fits, in this order: a timestamp column (`CREATED`, ...) first,
/// then from the right, never the id; the footer names what was left out.
fn table(op: &str, items: &[Value], foot: Option<String>, colour: bool) -> String {
    let columns: Vec<(String, String)> = match curated(op) {
        Some(c) => c.iter().map(|(h, f)| ((*h).to_owned(), (*f).to_owned())).collect(),
        None => discovered(items),
    };
    let mut text = if items.is_empty() {
        "no items\n".to_owned()
    } else {
        let rows: Vec<Vec<String>> = items
            .iter()
            .map(|item| columns.iter().map(|(_, f)| cell_text(item.get(f))).collect())
            .collect();
        let mut table = new_table(colour);
        let keep = fit(&columns, &rows, table.width().map(usize::from));
        table.set_header(header(keep.iter().map(|&i| columns[i].0.clone()), colour));
        for row in &rows {
            table.add_row(keep.iter().map(|&i| row[i].clone()).collect::<Vec<_>>());
        }
        if let Some(at) = keep.iter().position(|&i| columns[i].1 == "id")
            && let Some(column) = table.column_mut(at)
        {
            column.set_constraint(ColumnConstraint::ContentWidth);
        }
        let mut text = format!("{table}\n");
        if keep.len() < columns.len() {
            let left: Vec<&str> = (0..columns.len())
                .filter(|i| !keep.contains(i))
                .map(|i| columns[i].0.as_str())
                .collect();
            text.push_str(&format!("hidden at this width: {} (--format json)\n", left.join(", ")));
        }
        text
    };
    if let Some(foot) = foot {
        text.push_str(&foot);
        text.push('\n');
    }
    text
}

/// The columns (their indices) that fit in `width`, each as wide as its
/// widest cell plus its padding; all of them when the width is unknown.
fn fit(columns: &[(String, String)], rows: &[Vec<String>], width: Option<usize>) -> Vec<usize> {
    let mut keep: Vec<usize> = (0..columns.len()).collect();
    let Some(width) = width else { return keep };
    let wide = |i: usize| {
        let cells = rows.iter().map(|r| r.get(i).map_or(0, |c| c.chars().count()));
        cells.chain([columns[i].0.chars().count()]).max().unwrap_or(0) + 2
    };
    while keep.len() > 1 && keep.iter().map(|&i| wide(i)).sum::<usize>() > width {
        let is_time = |i: &usize| columns[*i].1.ends_with("_at");
        let victim = keep
            .iter()
            .position(|i| is_time(i) && columns[*i].1 != "id")
            .or_else(|| keep.iter().rposition(|i| columns[*i].1 != "id"));
        match victim {
            Some(at) => {
                keep.remove(at);
            }
            None => break,
        }
    }
    keep
}

/// One resource as a table of its fields.
fn fields_table(resource: &Value, colour: bool) -> String {
    let Some(fields) = resource.as_object() else {
        return format!("{}\n", cell_text(Some(resource)));
    };
    let mut table = new_table(colour);
    table.set_header(header(["FIELD".to_owned(), "VALUE".to_owned()], colour));
    for (k, v) in fields {
        table.add_row([k.clone(), cell_text(Some(v))]);
    }
    format!("{table}\n")
}

/// The CSV columns: the curated fields where there are some, else every
/// field of the first item.
fn csv_columns(op: &str, items: &[Value]) -> Vec<String> {
    match curated(op) {
        Some(c) => c.iter().map(|(_, f)| (*f).to_owned()).collect(),
        None => items
            .first()
            .and_then(Value::as_object)
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default(),
    }
}

fn csv(op: &str, items: &[Value]) -> Result<String, Failure> {
    csv_rows(&csv_columns(op, items), items, true)
}

/// CSV rows of `items` (and the header first): strings as they are, other
/// scalars as JSON reads them, nested values as compact JSON.
fn csv_rows(columns: &[String], items: &[Value], with_header: bool) -> Result<String, Failure> {
    let mut out = csv::Writer::from_writer(Vec::new());
    let failed = |e: csv::Error| Failure::usage(format!("CSV: {e}"));
    if with_header {
        out.write_record(columns).map_err(failed)?;
    }
    for item in items {
        out.write_record(columns.iter().map(|c| match item.get(c) {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        }))
        .map_err(failed)?;
    }
    let bytes = out.into_inner().map_err(|e| Failure::usage(format!("CSV: {e}")))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn op(id: &str) -> &str {
        crate::operations::find(id).unwrap().id
    }

    fn one_page(items: Vec<Value>) -> crate::pagination::Page {
        crate::pagination::Page {
            page: 1,
            items,
            total: None,
            total_pages: None,
            meta: crate::meta::ResponseMeta::from_parts(200, &http::HeaderMap::new()),
        }
    }

    fn bundles() -> Value {
        json!({"data": [
            {"id": "b1", "status": "in_review", "country": "USA", "platform": "tiktok",
             "account_status": "in_creation", "videos_quantity": 3, "created_at": "2026-12-04T18:41:39.123Z", "extra": {"x": 1}},
            {"id": "b2", "status": "draft", "country": "FRA", "platform": "instagram", "videos_quantity": 0,
             "created_at": "2026-12-05T09:00:00Z"}
        ], "pagination": {"page": 1, "per_page": 2, "total": 5, "total_pages": 3}})
    }

    #[test]
    fn a_list_as_a_table_with_its_page_and_total() {
        let text = table(
            op("listBundles"),
            bundles()["data"].as_array().unwrap(),
            footer(&bundles()),
            false,
        );
        for header in [
            "ID",
            "STATUS",
            "COUNTRY",
            "PLATFORM",
            "ACCOUNT STATUS",
            "VIDEOS",
            "CREATED",
        ] {
            assert!(text.contains(header), "{header} in\n{text}");
        }
        assert!(text.contains("2026-12-04 18:41"), "{text}");
        assert!(!text.contains("extra"), "only the useful columns:\n{text}");
        assert!(text.contains("page 1 of 3 · 2 of 5 · --all-pages"), "{text}");
        assert!(!text.contains('\u{1b}'), "no colour asked:\n{text}");
    }

    #[test]
    fn at_a_terminal_only_a_list_of_objects_that_pages_is_a_table() {
        let shape = Shape {
            format: None,
            jq: None,
            terminal: true,
            compact: false,
            colour: false,
        };
        let table = shape.answer("listBundles", &bundles()).unwrap();
        assert!(table.contains("ACCOUNT STATUS"), "{table}");
        let events = json!({"data": ["bundle.created", "bundle.published"]});
        let shown = shape.answer("listWebhookEvents", &events).unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&shown).unwrap(),
            events,
            "strings stay JSON"
        );
        let made = json!({"data": [{"id": "b1"}], "credits_charged": 20});
        let shown = shape.answer("createBundlesBulk", &made).unwrap();
        assert!(
            shown.contains("\"credits_charged\": 20"),
            "what a create made stays JSON: {shown}"
        );
        let countries = json!({"data": [{"code": "USA", "name": "United States"}]});
        let shown = shape.answer("listCountries", &countries).unwrap();
        assert!(
            shown.contains("CODE") && shown.contains("United States"),
            "a list that does not page is a table: {shown}"
        );
        let pipe = Shape {
            terminal: false,
            ..shape
        };
        assert_eq!(
            pipe.answer("listBundles", &bundles()).unwrap(),
            format!("{}\n", serde_json::to_string(&bundles()).unwrap()),
            "a pipe gets compact JSON, as ever"
        );
    }

    #[test]
    fn a_narrow_width_drops_the_time_first_then_from_the_right_never_the_id() {
        let columns: Vec<(String, String)> = [
            ("ID", "id"),
            ("STATUS", "status"),
            ("COUNTRY", "country"),
            ("CREATED", "created_at"),
        ]
        .iter()
        .map(|(h, f)| ((*h).to_owned(), (*f).to_owned()))
        .collect();
        let id = "0b9a58d3-6f61-431d-bfd8-69e9496298b7".to_owned();
        let rows = vec![vec![id, "in_review".into(), "USA".into(), "2026-12-04 18:41".into()]];
        assert_eq!(fit(&columns, &rows, None), [0, 1, 2, 3]);
        assert_eq!(fit(&columns, &rows, Some(200)), [0, 1, 2, 3]);
        assert_eq!(fit(&columns, &rows, Some(60)), [0, 1, 2], "the time goes first");
        assert_eq!(fit(&columns, &rows, Some(50)), [0, 1], "then from the right");
        assert_eq!(fit(&columns, &rows, Some(10)), [0], "never the id");
    }

    #[test]
    fn an_unknown_list_shows_its_first_scalars_id_first() {
        let items = [json!({"name": "n", "nested": {"a": 1}, "id": "x1", "n": 2})];
        let columns: Vec<String> = discovered(&items).into_iter().map(|(_, f)| f).collect();
        assert_eq!(columns, ["id", "name", "n"]);
    }

    #[test]
    fn csv_quotes_and_keeps_nested_values() {
        let items = [
            json!({"id": "a,b", "n": 1, "tags": ["x"]}),
            json!({"id": "c", "n": null}),
        ];
        let text = csv_rows(&["id".into(), "n".into(), "tags".into()], &items, true).unwrap();
        assert_eq!(text, "id,n,tags\n\"a,b\",1,\"[\"\"x\"\"]\"\nc,,\n");
    }

    #[test]
    fn timestamps_only_when_shaped_as_one() {
        assert_eq!(timestamp("2026-12-04T18:41:39Z").as_deref(), Some("2026-12-04 18:41"));
        assert_eq!(timestamp("2026-12-04"), None);
        assert_eq!(timestamp("in_review-and-more"), None);
        assert_eq!(
            timestamp("2026-1é-04T18:41:39Z"),
            None,
            "no panic on a multibyte character"
        );
    }

    #[test]
    fn all_pages_as_one_json_array_or_csv_with_one_header() {
        let shape = Shape {
            format: Some(Format::Json),
            jq: None,
            terminal: false,
            compact: false,
            colour: false,
        };
        let mut pages = shape.pages(op("listBundles"));
        let mut text = pages.page(one_page(vec![json!({"id": 1})])).unwrap();
        text += &pages.page(one_page(vec![json!({"id": 2})])).unwrap();
        text += &pages.finish();
        assert_eq!(
            serde_json::from_str::<Value>(&text).unwrap(),
            json!([{"id": 1}, {"id": 2}])
        );

        let shape = Shape {
            format: Some(Format::Csv),
            ..shape
        };
        let mut pages = shape.pages(op("listAccounts"));
        let mut text = pages
            .page(one_page(vec![json!({"id": "a1", "status": "active"})]))
            .unwrap();
        text += &pages.page(one_page(vec![json!({"id": "a2"})])).unwrap();
        text += &pages.finish();
        assert_eq!(text.lines().filter(|l| l.starts_with("id,")).count(), 1, "{text}");
        assert_eq!(text.lines().count(), 3, "{text}");
    }

    #[test]
    fn no_color_wins_and_clicolor_force_colours_a_pipe() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).into())
        };
        assert!(colour_with(true, env(&[])));
        assert!(!colour_with(false, env(&[])));
        assert!(colour_with(false, env(&[("CLICOLOR_FORCE", "1")])));
        assert!(!colour_with(true, env(&[("NO_COLOR", "1"), ("CLICOLOR_FORCE", "1")])));
        assert!(!colour_with(false, env(&[("CLICOLOR_FORCE", "0")])));
        assert!(
            colour_with(true, env(&[("NO_COLOR", "")])),
            "an empty NO_COLOR is unset"
        );
    }
}
