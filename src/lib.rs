//! pitboss: a terminal control panel for fleets of AI agents.
//!
//! Layout (dependencies point left): `core` (pure) ← `io` (adapters) ← `engine` (the one
//! writer) ← `tui` and `cli` (front ends). `config` turns workflow files into validated data.

pub mod cli;
pub mod config;
pub mod core;
pub mod engine;
pub mod io;
pub mod launch;
pub mod tui;
