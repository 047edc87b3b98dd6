//! The manual pages: `docs/man/*.1`, rendered with clap_mangen from the
//! CLI's own command tree (`tokportal::cli::manual_pages`), so a flag, a
//! field or a command added to the CLI reaches its page. `cargo xtask regen`
//! writes them and `--check` fails on a page out of date, as for the spec's
//! inventories. The release archives ship the folder (`man/`).

/// Where the pages are kept.
pub(crate) const DIR: &str = "docs/man";

/// Each page: its path below the repository and its text.
pub(crate) fn pages() -> Result<Vec<(String, String)>, String> {
    let mut pages = Vec::new();
    for cmd in tokportal::cli::manual_pages() {
        let man = clap_mangen::Man::new(cmd);
        let mut text = Vec::new();
        man.render(&mut text)
            .map_err(|e| format!("cannot render a manual page: {e}"))?;
        let text = String::from_utf8(text).map_err(|e| format!("a manual page is not UTF-8: {e}"))?;
        pages.push((format!("{DIR}/{}", man.get_filename()), text));
    }
    Ok(pages)
}
