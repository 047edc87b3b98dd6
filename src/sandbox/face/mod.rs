//! The HTTP face: how a request reaches the world and how it is answered.
//!
//! - `server`: the hyper accept loop (a fault can close a connection
//!   without an answer), sending `/_sandbox/` paths to `admin` and the rest
//!   to `flow`;
//! - `shared`: what every request shares (`Shared`), and `persist`, which
//!   writes a key's changes to the state file before the answer;
//! - `flow`: one API request as named stages, from route to headers;
//! - `limits`: the per-key token bucket (429 `RATE_LIMIT_EXCEEDED`);
//! - `relay`: a request passed to the live API (`--proxy`), its answer
//!   streamed back, then recorded and checked for drift;
//! - `faults`: `X-Sandbox-Fault`, the queue and `--fault-rate`;
//! - `admin`: the sandbox's own routes under `/_sandbox/`;
//! - `timeline`: those of time: a key's clock, its advance, the manager.
//!
//! The face reads the world, `live` and the logbook; none of them reads the face.

pub(in crate::sandbox) mod admin;
pub(in crate::sandbox) mod faults;
pub(in crate::sandbox) mod flow;
pub(in crate::sandbox) mod limits;
pub(in crate::sandbox) mod relay;
pub(in crate::sandbox) mod server;
pub(in crate::sandbox) mod shared;
pub(in crate::sandbox) mod timeline;
