//! Benchmarks that need the whole app, run by `cellsymphony bench`: the slide replay (scripted
//! pan/zoom rendered headless, [`replay`]), the same over a bundle's stains with its cells
//! ([`morphology`]), the cell overlay ([`cells`]), the transcript index and layer at scale ([`transcripts`]), and model throughput ([`models`]). They run exactly what the viewer runs (its layers and renderers), headless.
//!
//! May import: `cli`, `work`, `layers`, `util` and the crates; never the shell.

pub mod cells;
pub mod models;
pub mod morphology;
pub mod replay;
pub mod transcripts;
