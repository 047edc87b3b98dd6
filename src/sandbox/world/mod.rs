//! The world: what TokPortal holds and does, whoever asks.
//!
//! - `state`: resources per key, credits and status transitions;
//! - `clock`: a key's clock (real or simulated) and the account manager's
//!   desk: the work handed over and when it falls due;
//! - `manager`: the account manager doing that work (review, posting on
//!   the date, corrections, a flagged download), and `advance`;
//! - `transitions`: the status moves of an account or video slot and their
//!   webhook events, shared by the handlers and the manager;
//! - `vocabulary`: what the handlers, the manager and the status moves all
//!   speak: a call, its reply, its effects, and the queue of webhook
//!   deliveries an event makes;
//! - `behaviour`: what each operation does to them;
//! - `deliveries`: signed webhook deliveries with retries and a log;
//! - `keys`: the API keys the sandbox takes, and a key's state made on
//!   first use;
//! - `replays`: the answers kept under idempotency keys;
//! - `saved`: what of a key the state file holds already;
//! - `snapshot`: a key's state, or all of them, as one JSON document;
//! - `store`: all of it in a SQLite file (`--state`), written before an
//!   answer is sent.
//!
//! The world reads the contract and the logbook's journal (to publish
//! what it does); it never reads the HTTP face.

pub(in crate::sandbox) mod behaviour;
pub(in crate::sandbox) mod clock;
pub(in crate::sandbox) mod deliveries;
pub(in crate::sandbox) mod keys;
pub(in crate::sandbox) mod manager;
pub(in crate::sandbox) mod replays;
pub(in crate::sandbox) mod saved;
pub(in crate::sandbox) mod snapshot;
pub(in crate::sandbox) mod state;
pub(in crate::sandbox) mod store;
pub(in crate::sandbox) mod transitions;
pub(in crate::sandbox) mod vocabulary;
