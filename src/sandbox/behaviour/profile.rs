//! The profile, the reference lists and credits.

use serde_json::{Value, json};

use super::{Call, Reply, page};
use crate::sandbox::contract::Failure;
use crate::sandbox::state::{PRICES, Tenant};

/// Countries the sandbox sells accounts in.
pub(super) const COUNTRIES: &[(&str, &str)] = &[
    ("USA", "United States"),
    ("GBR", "United Kingdom"),
    ("FRA", "France"),
    ("DEU", "Germany"),
    ("BRA", "Brazil"),
    ("JPN", "Japan"),
];

pub(super) fn run(tenant: &mut Tenant, call: &Call) -> Result<Option<Reply>, Failure> {
    Ok(Some(match call.op.id {
        "getCurrentUser" => {
            let mut user = tenant.user.clone();
            user.insert("credits".into(), json!({"balance": tenant.balance}));
            Reply::data(call, Value::Object(user))
        }
        "listCountries" => Reply::data(
            call,
            COUNTRIES
                .iter()
                .map(|(code, name)| json!({"code": code, "name": name, "platforms": ["tiktok", "instagram"]}))
                .collect::<Vec<_>>(),
        ),
        "listPlatforms" => Reply::data(
            call,
            json!([
                {"id": "tiktok", "name": "TikTok", "bundle_types": ["account_only", "account_and_videos", "videos_only"]},
                {"id": "instagram", "name": "Instagram", "bundle_types": ["account_only", "account_and_videos", "videos_only"]},
            ]),
        ),
        "getCreditCosts" => Reply::data(
            call,
            json!({
                "currency": "credits",
                "costs": PRICES.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
                "note": "Sandbox prices: illustrative, not TokPortal's.",
            }),
        ),
        "getCreditBalance" => Reply::data(call, json!({"balance": tenant.balance, "currency": "credits"})),
        "listCreditTransactions" => page(
            call,
            tenant.transactions.iter().rev().cloned().map(Value::Object).collect(),
        ),
        _ => return Ok(None),
    }))
}
