//! What of a key the state file holds already (`store`), kept beside the
//! key's state (`state::Tenant::saved`): how the store finds what a request
//! changed without reading the file. Its own module so that `state` can
//! hold it without reading `store`: the store reads `state` (it writes a
//! `Tenant`'s rows and reads them back), and `state` never reads the store.

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

/// What of a key is in the file already: how it finds what changed.
#[derive(Clone, Debug, Default)]
pub(in crate::sandbox) struct Saved {
    /// Written at least once.
    pub(in crate::sandbox) written: bool,
    /// The key's number in the file (`keys.n`, the `key_n` of its rows),
    /// given at its first write and kept for its life; 0 before.
    pub(in crate::sandbox) key_n: i64,
    /// The row (`bundles.n`) of each of `bundles[..len]`, by position
    /// (bundles are only ever added).
    pub(in crate::sandbox) bundles: Vec<i64>,
    /// The content hash of each account, endpoint and comment task row, by
    /// table and id.
    pub(in crate::sandbox) hashes: HashMap<(&'static str, String), u64>,
    /// The delivery rows, by id.
    pub(in crate::sandbox) deliveries: HashSet<Uuid>,
    /// The log rows (`records.n`), by kind and id.
    pub(in crate::sandbox) logs: HashMap<&'static str, HashMap<String, i64>>,
    /// The desk as last written.
    pub(in crate::sandbox) desk: u64,
    /// The profile as last written.
    pub(in crate::sandbox) profile: u64,
    /// A write failed after this record had moved on: the next one deletes
    /// the key's rows and writes it whole.
    pub(in crate::sandbox) resync: bool,
}

impl Saved {
    /// Whether the key has been written to the file at least once.
    pub(in crate::sandbox) fn written(&self) -> bool {
        self.written
    }

    /// A commit of this key's rows failed: the next write deletes its rows
    /// and writes it whole.
    pub(in crate::sandbox) fn resync(&mut self) {
        self.resync = true;
    }
}
