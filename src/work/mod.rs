//! Background work: the one job registry ([`jobs`]: kind, key, progress, cancel, one poll) and
//! what runs on it: opening slides, bundles and transcripts ([`open`]), the selection analyses
//! ([`analysis`]), model runs and their cache ([`model_runs`], over the bundle-to-model-inputs
//! code in [`models`] that the command line shares), and the demo generator ([`demo`]), and the cohort tab's comparison of samples
//! ([`cohort`]). Work
//! returns its results as data; the shell applies them once per frame.
//!
//! May import: `io`, `layers`, `util` and the crates.

pub mod analysis;
pub mod cohort;
pub mod demo;
pub mod jobs;
pub mod model_runs;
pub mod models;
pub mod open;
