//! The noun-verb form of the commands (`tokportal bundles list`, `tokportal
//! bundles videos configure`), reviewed by hand in one place as
//! `operations/hints.rs` is: the contract names operations (`listBundles`),
//! not a tree, and a verb is a person's choice.
//!
//! The nouns follow the contract's tags (Bundles, Videos, Accounts, ...),
//! with an operation placed under the resource its path names: a bundle's
//! videos are `bundles videos`, an account's analytics `accounts analytics`.
//! The flat names (`list-bundles`) stay; both forms run the same command.
//! The tests below fail when an operation of the table has no place here,
//! when a place names an operation the table lacks, and when two operations
//! share one.

use crate::operations::{OPERATIONS, Operation};

/// (operationId, the nouns, the verb).
pub(crate) const TREE: &[(&str, &[&str], &str)] = &[
    // Profile, Reference, Credits
    ("getCurrentUser", &["me"], "get"),
    ("listCountries", &["countries"], "list"),
    ("listPlatforms", &["platforms"], "list"),
    ("getCreditCosts", &["credits"], "costs"),
    ("getCreditBalance", &["credits"], "balance"),
    ("listCreditTransactions", &["credits"], "history"),
    // Bundles
    ("listBundles", &["bundles"], "list"),
    ("createBundle", &["bundles"], "create"),
    ("createBundlesBulk", &["bundles"], "create-bulk"),
    ("getBundle", &["bundles"], "get"),
    ("updateBundle", &["bundles"], "update"),
    ("publishBundle", &["bundles"], "publish"),
    ("getBundlePublishReadiness", &["bundles"], "readiness"),
    ("unpublishBundle", &["bundles"], "unpublish"),
    ("addVideoSlots", &["bundles"], "add-video-slots"),
    ("addEditSlots", &["bundles"], "add-edit-slots"),
    // Account Configuration: a bundle's account
    ("getBundleAccount", &["bundles", "account"], "get"),
    ("configureBundleAccount", &["bundles", "account"], "configure"),
    (
        "requestBundleAccountCorrections",
        &["bundles", "account"],
        "request-corrections",
    ),
    ("finalizeBundleAccount", &["bundles", "account"], "finalize"),
    // Videos: a bundle's videos
    ("listBundleVideos", &["bundles", "videos"], "list"),
    ("getBundleVideo", &["bundles", "videos"], "get"),
    ("configureBundleVideo", &["bundles", "videos"], "configure"),
    ("patchBundleVideo", &["bundles", "videos"], "patch"),
    ("batchConfigureBundleVideos", &["bundles", "videos"], "batch-configure"),
    ("publishAllBundleVideos", &["bundles", "videos"], "publish-all"),
    ("importBundleVideosCsv", &["bundles", "videos"], "import-csv"),
    ("publishBundleVideo", &["bundles", "videos"], "publish"),
    ("resetBundleVideo", &["bundles", "videos"], "reset"),
    ("unscheduleBundleVideo", &["bundles", "videos"], "unschedule"),
    ("finalizeBundleVideo", &["bundles", "videos"], "finalize"),
    (
        "requestBundleVideoCorrections",
        &["bundles", "videos"],
        "request-corrections",
    ),
    ("fixBundleVideoDownload", &["bundles", "videos"], "fix-download"),
    // Accounts
    ("listAccounts", &["accounts"], "list"),
    ("getAccount", &["accounts"], "get"),
    ("listAccountBundles", &["accounts"], "bundles"),
    ("retrieveAccountVerificationCode", &["accounts"], "verification-code"),
    ("revealAccountCredentials", &["accounts"], "reveal-credentials"),
    ("getAccountEditRequest", &["accounts", "edit-request"], "get"),
    ("createAccountEditRequest", &["accounts", "edit-request"], "create"),
    // Analytics of one account, under it
    ("canRefreshAccountAnalytics", &["accounts", "analytics"], "can-refresh"),
    ("refreshAccountAnalytics", &["accounts", "analytics"], "refresh"),
    ("getAccountAnalytics", &["accounts", "analytics"], "get"),
    ("listAccountVideoAnalytics", &["accounts", "analytics"], "videos"),
    // Webhooks (beside the local `webhooks verify` and `webhooks sign`)
    ("listWebhookEvents", &["webhooks"], "events"),
    ("listWebhookEndpoints", &["webhooks"], "list"),
    ("createWebhookEndpoint", &["webhooks"], "create"),
    ("getWebhookEndpoint", &["webhooks"], "get"),
    ("updateWebhookEndpoint", &["webhooks"], "update"),
    ("deleteWebhookEndpoint", &["webhooks"], "delete"),
    ("testWebhookEndpoint", &["webhooks"], "test"),
    ("listWebhookDeliveries", &["webhooks", "deliveries"], "list"),
    ("retryWebhookDelivery", &["webhooks", "deliveries"], "retry"),
    // Uploads
    ("uploadVideo", &["uploads"], "video"),
    ("uploadVideoDirect", &["uploads"], "video-direct"),
    ("uploadImage", &["uploads"], "image"),
    ("uploadImageDirect", &["uploads"], "image-direct"),
    ("uploadImageFromUrl", &["uploads"], "image-from-url"),
    // Analytics
    ("getAnalyticsDashboard", &["analytics"], "dashboard"),
    ("getAnalyticsContract", &["analytics"], "contract"),
    ("exportAnalyticsVideos", &["analytics"], "export-videos"),
    ("getAnalyticsSeries", &["analytics"], "series"),
    ("getCommentPulse", &["analytics"], "comments"),
    ("createAnalyticsReport", &["analytics", "reports"], "create"),
    ("exportAnalyticsReportHtml", &["analytics", "reports"], "html"),
    ("getAnalyticsAccount", &["analytics", "accounts"], "get"),
    ("refreshAnalyticsAccount", &["analytics", "accounts"], "refresh"),
    ("listAnalyticsAccountRawSnapshots", &["analytics", "accounts"], "raw"),
    ("listAnalyticsAccountComments", &["analytics", "accounts"], "comments"),
    ("getVideoAnalytics", &["analytics", "videos"], "get"),
    ("listAnalyticsPostRawSnapshots", &["analytics", "posts"], "raw"),
    // Comments
    ("listCommentTasks", &["comments"], "list"),
    ("createCommentTasks", &["comments"], "create"),
    ("getCommentTask", &["comments"], "get"),
    ("deleteCommentTask", &["comments"], "delete"),
    ("approveCommentTask", &["comments"], "approve"),
    ("disputeCommentTask", &["comments"], "dispute"),
    ("listCommentTaskVerifications", &["comments"], "verifications"),
];

/// What a noun is, for its `--help` line.
pub(crate) fn about(noun: &str) -> &'static str {
    match noun {
        "me" => "The account of the key",
        "countries" => "Countries accounts can be made in",
        "platforms" => "Platforms TokPortal posts to",
        "credits" => "The balance, the prices and the history of credits",
        "bundles" => "Bundles: accounts and videos bought together",
        "account" => "The bundle's account: its profile, corrections, finalizing",
        "videos" => "The videos of a bundle or an account",
        "accounts" => "Delivered accounts",
        "edit-request" => "A change to a delivered account's profile",
        "analytics" => "Analytics of accounts, videos and comments",
        "webhooks" => "Webhook endpoints and deliveries; verify or sign one locally",
        "deliveries" => "An endpoint's deliveries",
        "uploads" => "Files for videos and images",
        "reports" => "Analytics reports",
        "posts" => "A post's raw snapshots",
        "comments" => "Comment tasks",
        _ => "",
    }
}

/// The place of `op` in the tree: its nouns and its verb.
pub(crate) fn place(op: &Operation) -> Option<(&'static [&'static str], &'static str)> {
    TREE.iter()
        .find(|(id, _, _)| *id == op.id)
        .map(|(_, nouns, verb)| (*nouns, *verb))
}

/// The operation at `nouns` + `verb`, if one is there.
pub(crate) fn at(nouns: &[&str], verb: &str) -> Option<&'static Operation> {
    let (id, _, _) = TREE.iter().find(|(_, n, v)| *n == nouns && *v == verb)?;
    OPERATIONS.iter().find(|op| op.id == *id)
}

/// The top-level nouns, in the table's order, each once.
pub(crate) fn top_nouns() -> Vec<&'static str> {
    let mut seen: Vec<&'static str> = Vec::new();
    for (_, nouns, _) in TREE {
        if let Some(first) = nouns.first()
            && !seen.contains(first)
        {
            seen.push(first);
        }
    }
    seen
}

/// The children of `prefix`: the nouns one level below it and the verbs
/// at it, in the table's order, each once.
pub(crate) fn children(prefix: &[&str]) -> (Vec<&'static str>, Vec<(&'static str, &'static Operation)>) {
    let mut nouns: Vec<&'static str> = Vec::new();
    let mut verbs = Vec::new();
    for (id, path, verb) in TREE {
        if path.len() > prefix.len() && path[..prefix.len()] == *prefix {
            let next = path[prefix.len()];
            if !nouns.contains(&next) {
                nouns.push(next);
            }
        } else if *path == prefix
            && let Some(op) = OPERATIONS.iter().find(|op| op.id == *id)
        {
            verbs.push((*verb, op));
        }
    }
    (nouns, verbs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_operation_has_one_place_and_every_place_one_operation() {
        for op in OPERATIONS {
            assert!(
                place(op).is_some(),
                "{} (`{}`) has no place in cli/nouns.rs's TREE: give it nouns and a verb",
                op.id,
                op.cli_command
            );
        }
        let mut places = HashSet::new();
        for (id, nouns, verb) in TREE {
            assert!(
                OPERATIONS.iter().any(|op| op.id == *id),
                "{id} is in TREE but not in the contract"
            );
            assert!(places.insert((*nouns, *verb)), "two operations at {nouns:?} {verb}");
        }
        assert_eq!(TREE.len(), OPERATIONS.len(), "each operation once");
    }

    #[test]
    fn a_noun_is_never_also_a_verb_at_the_same_place() {
        for (_, nouns, _) in TREE {
            for depth in 1..=nouns.len() {
                let (_, verbs) = children(&nouns[..depth - 1]);
                assert!(
                    verbs.iter().all(|(v, _)| *v != nouns[depth - 1]),
                    "`{}` is both a noun and a verb",
                    nouns[..depth].join(" ")
                );
            }
            for noun in *nouns {
                assert!(!about(noun).is_empty(), "noun `{noun}` has no --help line");
            }
        }
    }

    #[test]
    fn the_names_people_type() {
        assert_eq!(at(&["bundles"], "list").map(|o| o.id), Some("listBundles"));
        assert_eq!(
            at(&["bundles", "videos"], "configure").map(|o| o.id),
            Some("configureBundleVideo")
        );
        assert_eq!(children(&[]).1.len(), 0);
        assert!(top_nouns().contains(&"bundles"));
    }
}
