//! pitboss: a terminal control panel for fleets of AI agents.
//!
//! Layout (dependencies point left, checked by `tests/architecture.rs`):
//! `core` (pure) ← {`config` (TOML → core workflow), `io` (adapters)} ← `engine` (the one
//! writer) ← `launch` (builds a run, hands a handle) ← {`cli`, `tui`} (front ends) ←
//! `main`. See `docs/ARCHITECTURE.md`.

pub mod cli;
pub mod config;
pub mod core;
pub mod ctl;
pub mod engine;
pub mod io;
pub mod launch;
pub mod mcp;
pub mod notify;
pub mod tui;
