//! The world: what TokPortal holds and does, whoever asks.
//!
//! - `state`: resources per key, credits and status transitions;
//! - `behaviour`: what each operation does to them;
//! - `deliveries`: signed webhook deliveries with retries and a log;
//! - `replays`: the answers kept under idempotency keys.
//!
//! The world reads the contract and the workbench's journal (to publish
//! what it does); it never reads the HTTP face.

pub(in crate::sandbox) mod behaviour;
pub(in crate::sandbox) mod deliveries;
pub(in crate::sandbox) mod replays;
pub(in crate::sandbox) mod state;
