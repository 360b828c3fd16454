//! CellSymphony Viewer: the eframe app and its command line. Libraries with one job each live in
//! `crates/`; this crate wires them to the UI, in folders by layer whose imports go one way:
//!
//! `app` (the shell) -> `ui` -> `viewer` -> `document` -> `work` -> `io` -> `layers` -> `util`
//! -> the crates; `cli` and `bench` sit beside the shell. Each folder's `mod.rs` says what lives
//! there and what it may import; ARCHITECTURE.md has the table.

pub mod app;
pub mod bench;
pub mod cli;
pub mod document;
pub mod io;
pub mod layers;
pub mod ui;
pub mod util;
pub mod viewer;
pub mod work;
