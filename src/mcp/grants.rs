//! `tokportal-mcp grants list|revoke --store URL`: an operator sees and
//! ends the OAuth grants the servers' store holds, while they run. It shows
//! grant ids, clients, key fingerprints, scopes and how often each was
//! refreshed: never a token, a code or a key (the store holds none).

use clap::ArgMatches;

use super::store::{Store, StoreUrl};

/// Runs `grants` with its parsed arguments: what to print, or why it failed.
pub async fn run(matches: &ArgMatches) -> Result<String, String> {
    let url = matches
        .get_one::<StoreUrl>("store")
        .ok_or("--store URL: the servers' store (sqlite:PATH or redis://HOST:PORT)")?;
    if *url == StoreUrl::Memory {
        return Err("--store memory lives inside one server: name its sqlite: or redis:// store".into());
    }
    let store = Store::open(url).await.map_err(|e| e.to_string())?;
    match matches.subcommand() {
        Some(("list", list)) => {
            let grants = store.grants().await.map_err(|e| e.to_string())?;
            if list.get_flag("json") {
                return serde_json::to_string_pretty(&serde_json::json!({ "grants": grants }))
                    .map_err(|e| e.to_string());
            }
            Ok(table(&grants, super::store::now()))
        }
        Some(("revoke", revoke)) => {
            let mut lines = Vec::new();
            for id in revoke.get_many::<String>("ids").into_iter().flatten() {
                let ended = store.revoke(id).await.map_err(|e| e.to_string())?;
                lines.push(if ended {
                    format!("revoked {id}: its tokens are refused from their next use")
                } else {
                    format!("{id}: no live grant of that id (already revoked, expired, or unknown)")
                });
            }
            Ok(lines.join("\n"))
        }
        _ => Err("grants: list or revoke".into()),
    }
}

/// The grants as an aligned table, newest first.
fn table(grants: &[super::store::Grant], now: i64) -> String {
    let mut rows = vec![[
        "GRANT".to_owned(),
        "CLIENT".to_owned(),
        "KEY".to_owned(),
        "SCOPE".to_owned(),
        "REFRESHES".to_owned(),
        "CREATED".to_owned(),
        "STATE".to_owned(),
    ]];
    for g in grants {
        let created = chrono::DateTime::from_timestamp(g.created_at, 0)
            .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default();
        let state = if g.revoked {
            "revoked".to_owned()
        } else {
            format!("live, {} d left", (g.expires_at - now).max(0) / 86_400)
        };
        rows.push([
            g.id.clone(),
            g.client_name.chars().take(30).collect(),
            g.key_id.clone(),
            g.scope.trim_start_matches("tokportal:").to_owned(),
            g.generation.to_string(),
            created,
            state,
        ]);
    }
    let widths: Vec<usize> = (0..7)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let line: Vec<String> = row.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    if grants.is_empty() {
        out.push_str("(no grants)\n");
    }
    out.trim_end().to_owned()
}
