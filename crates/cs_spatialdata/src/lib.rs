//! SpatialData `.zarr` stores (scverse), read for CellSymphony.
//!
//! [`SpatialData::open`] lists a store's elements (images, labels, shapes, points, tables) with
//! each element's coordinate transformations ([`transform`]: scale, translation, affine, mapAxis,
//! sequence, reduced to 2-D affines). [`shapes`] reads GeoParquet shapes (WKB or GeoArrow
//! encoded polygons, multipolygons and circles), [`table`] the AnnData table (obs columns, var
//! names, X as CSR, CSC or dense), and [`bundle::read_bundle`] assembles what the viewer shows: a
//! [`cs_xenium::XeniumBundle`] in world micrometres (cells from the table's annotated shapes,
//! boundaries, counts, obs colourings, points as transcripts) plus the images placed by their
//! transformations. Zarr v2 and v3 (spatialdata's 0.1 and 0.2 containers) read alike, through
//! the `zarrs` crate; parquet through `parquet`/`arrow`; WKB through `wkb`.

pub mod bundle;
mod error;
pub mod shapes;
pub mod table;
pub mod transform;
mod zarr;

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

pub use bundle::{PlacedImage, SpatialDataBundle, read_bundle};
pub use error::SpatialDataError;
pub use transform::ToCoordinateSystem;
pub use zarr::Store;

/// What kind of element, as the store's top-level folders name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElementKind {
    Image,
    Labels,
    Shapes,
    Points,
    Table,
}

impl ElementKind {
    pub fn folder(self) -> &'static str {
        match self {
            Self::Image => "images",
            Self::Labels => "labels",
            Self::Shapes => "shapes",
            Self::Points => "points",
            Self::Table => "tables",
        }
    }
}

/// One element of the store.
#[derive(Debug, Clone, PartialEq)]
pub struct Element {
    pub kind: ElementKind,
    pub name: String,
    /// Node path in the store (`images/he_image`).
    pub node: String,
    /// Its transformations, one per coordinate system (empty for tables).
    pub transformations: Vec<ToCoordinateSystem>,
    /// The element's attributes (OME-NGFF 0.5's `ome` wrapper removed).
    pub attributes: Map<String, Value>,
}

impl Element {
    /// The transformation to `coordinate_system`, if the element has one.
    pub fn to_system(&self, coordinate_system: &str) -> Option<&ToCoordinateSystem> {
        self.transformations
            .iter()
            .find(|t| t.coordinate_system == coordinate_system)
    }
}

/// An opened store: its elements, read lazily.
pub struct SpatialData {
    pub path: PathBuf,
    pub store: Store,
    /// The container format version (`spatialdata_attrs.version`), when recorded.
    pub format_version: Option<String>,
    pub elements: Vec<Element>,
}

/// Whether `path` looks like a SpatialData store: a folder with zarr metadata and at least one
/// of the element folders, or `spatialdata_attrs` in its root attributes.
pub fn is_spatialdata(path: &Path) -> bool {
    if !path.is_dir() || !(path.join("zarr.json").is_file() || path.join(".zgroup").is_file()) {
        return false;
    }
    if path.join("images").join("zarr.json").exists() && path.join("zarr.json").is_file() {
        return true;
    }
    ["images", "labels", "shapes", "points", "tables", "table"]
        .iter()
        .any(|folder| path.join(folder).is_dir())
}

impl SpatialData {
    pub fn open(path: &Path) -> Result<Self, SpatialDataError> {
        if !is_spatialdata(path) {
            return Err(SpatialDataError::NotSpatialData {
                path: path.to_path_buf(),
                reason: "not a SpatialData store (a zarr folder with images/, shapes/, points/ or tables/)".to_owned(),
            });
        }
        let store = Store::open(path)?;
        let root = store.group_attributes("").unwrap_or_default();
        let format_version = root
            .get("spatialdata_attrs")
            .and_then(|a| a.get("version"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let mut elements = Vec::new();
        for kind in [
            ElementKind::Image,
            ElementKind::Labels,
            ElementKind::Shapes,
            ElementKind::Points,
            ElementKind::Table,
        ] {
            // spatialdata before 0.1 kept one table in `table/`.
            let folders: &[&str] = if kind == ElementKind::Table {
                &["tables", "table"]
            } else {
                &[kind.folder()]
            };
            for folder in folders {
                for name in child_folders(&path.join(folder)) {
                    let node = format!("{folder}/{name}");
                    elements.push(read_element(&store, kind, name, node)?);
                }
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            store,
            format_version,
            elements,
        })
    }

    pub fn of_kind(&self, kind: ElementKind) -> impl Iterator<Item = &Element> {
        self.elements.iter().filter(move |e| e.kind == kind)
    }

    pub fn element(&self, kind: ElementKind, name: &str) -> Option<&Element> {
        self.of_kind(kind).find(|e| e.name == name)
    }

    /// Every coordinate system some element maps to, `global` first when present.
    pub fn coordinate_systems(&self) -> Vec<String> {
        let mut systems: Vec<String> = Vec::new();
        for element in &self.elements {
            for t in &element.transformations {
                if !systems.contains(&t.coordinate_system) {
                    systems.push(t.coordinate_system.clone());
                }
            }
        }
        systems.sort_by_key(|s| s != "global");
        systems
    }
}

/// Sub-folders that are zarr nodes, sorted by name.
fn child_folders(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .filter(|e| {
            let p = e.path();
            p.join("zarr.json").is_file() || p.join(".zgroup").is_file() || p.join(".zattrs").is_file()
        })
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .collect();
    names.sort();
    names
}

fn read_element(store: &Store, kind: ElementKind, name: String, node: String) -> Result<Element, SpatialDataError> {
    let attributes = store.group_attributes(&node)?;
    let bad = |reason: String| error::corrupt(store.path_of(&node), reason);
    let (list, axes) = match kind {
        // Rasters keep their transformations in `multiscales[0].coordinateTransformations`.
        ElementKind::Image | ElementKind::Labels => {
            let multiscale = attributes
                .get("multiscales")
                .and_then(|m| m.get(0))
                .ok_or_else(|| bad("an image without OME-NGFF `multiscales`".to_owned()))?;
            let axes: Vec<String> = multiscale
                .get("axes")
                .and_then(Value::as_array)
                .map(|axes| {
                    axes.iter()
                        .filter_map(|a| a.get("name").or(Some(a)).and_then(Value::as_str).map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            (multiscale.get("coordinateTransformations").cloned(), axes)
        }
        ElementKind::Shapes | ElementKind::Points => {
            let axes: Vec<String> = attributes
                .get("axes")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                .unwrap_or_else(|| vec!["x".to_owned(), "y".to_owned()]);
            (attributes.get("coordinateTransformations").cloned(), axes)
        }
        ElementKind::Table => (None, Vec::new()),
    };
    let transformations = match list {
        Some(list) => transform::parse_transformations(&list, &axes)
            .map_err(|reason| bad(format!("coordinateTransformations: {reason}")))?,
        None => Vec::new(),
    };
    Ok(Element {
        kind,
        name,
        node,
        transformations,
        attributes,
    })
}
