//! The logbook: what a developer sees of the sandbox's work (the sandbox's
//! side of the workbench; the CLI's `listen`, `trigger` and `logs` read it
//! over HTTP).
//!
//! - `journal`: every request answered, in a bounded ring, and the live
//!   feed of requests, delivery attempts and webhook events;
//! - `verify`: the tally of everything seen since start or reset, and
//!   `POST /_sandbox/verify`'s question of it;
//! - `inspector`: the page at `/_sandbox/` that shows all of it live.
//!
//! The logbook reads nothing else of the sandbox: the world and the face
//! write to it.

pub(in crate::sandbox) mod inspector;
pub(in crate::sandbox) mod journal;
pub(in crate::sandbox) mod verify;
