//! The profile, the reference lists and credits.

use serde_json::{Value, json};

use super::{Handler, page};
use crate::sandbox::contract::Failure;
use crate::sandbox::world::state::{PRICES, Tenant};
use crate::sandbox::world::vocabulary::{Call, Effects, Reply};

/// Countries the sandbox sells accounts in.
pub(super) const COUNTRIES: &[(&str, &str)] = &[
    ("USA", "United States"),
    ("GBR", "United Kingdom"),
    ("FRA", "France"),
    ("DEU", "Germany"),
    ("BRA", "Brazil"),
    ("JPN", "Japan"),
];

/// The operations this module answers, and how.
pub(super) const HANDLERS: &[(&str, Handler)] = &[
    ("getCurrentUser", get_current_user),
    ("listCountries", list_countries),
    ("listPlatforms", list_platforms),
    ("getCreditCosts", get_credit_costs),
    ("getCreditBalance", get_credit_balance),
    ("listCreditTransactions", list_credit_transactions),
];

/// `getCurrentUser`.
fn get_current_user(tenant: &mut Tenant, call: &Call, _fx: &mut Effects) -> Result<Reply, Failure> {
    let mut user = tenant.user.clone();
    // Kept with the key's state, but not a field of `MeResponse`: the
    // answer names only what the contract does (the drift check found it).
    user.remove("created_at");
    user.insert("credits".into(), json!({"balance": tenant.balance}));
    Ok(Reply::data(call, Value::Object(user)))
}

/// `listCountries`.
fn list_countries(_tenant: &mut Tenant, call: &Call, _fx: &mut Effects) -> Result<Reply, Failure> {
    Ok(Reply::data(
        call,
        COUNTRIES
            .iter()
            .map(|(code, name)| json!({"code": code, "name": name, "platforms": ["tiktok", "instagram"]}))
            .collect::<Vec<_>>(),
    ))
}

/// `listPlatforms`.
fn list_platforms(_tenant: &mut Tenant, call: &Call, _fx: &mut Effects) -> Result<Reply, Failure> {
    Ok(Reply::data(
        call,
        json!([
            {"id": "tiktok", "name": "TikTok", "bundle_types": ["account_only", "account_and_videos", "videos_only"]},
            {"id": "instagram", "name": "Instagram", "bundle_types": ["account_only", "account_and_videos", "videos_only"]},
        ]),
    ))
}

/// `getCreditCosts`.
fn get_credit_costs(_tenant: &mut Tenant, call: &Call, _fx: &mut Effects) -> Result<Reply, Failure> {
    Ok(Reply::data(
        call,
        json!({
            "currency": "credits",
            "costs": PRICES.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "note": "Sandbox prices: illustrative, not TokPortal's.",
        }),
    ))
}

/// `getCreditBalance`.
fn get_credit_balance(tenant: &mut Tenant, call: &Call, _fx: &mut Effects) -> Result<Reply, Failure> {
    Ok(Reply::data(
        call,
        json!({"balance": tenant.balance, "currency": "credits"}),
    ))
}

/// `listCreditTransactions`.
fn list_credit_transactions(tenant: &mut Tenant, call: &Call, _fx: &mut Effects) -> Result<Reply, Failure> {
    Ok(page(
        call,
        tenant.transactions.iter().rev().cloned().map(Value::Object).collect(),
    ))
}
