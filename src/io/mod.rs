//! Files in and out: the session file format ([`session_file`]), selections and annotations as
//! GeoJSON and CSV ([`selection_io`], [`annotation_geojson`]), exports of statistics and plots
//! ([`export`]), cell groups to and from Xenium Explorer ([`cell_groups`]), recently opened
//! files ([`recent`]), and the plain [`records`] they all speak.
//! Functions here take and return values; none knows the document, the viewer or the UI.
//!
//! May import: `layers` (the camera, palettes), `util` and the crates.

pub mod annotation_geojson;
pub mod cell_groups;
pub mod export;
pub mod recent;
pub mod records;
pub mod selection_io;
pub mod session_file;
