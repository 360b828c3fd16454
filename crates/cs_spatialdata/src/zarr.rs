//! The few zarr reads the container needs, over `zarrs` (v2 and v3 alike): attributes of a node,
//! and whole 1-D arrays as numbers or text.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value};
use zarrs::array::Array;
use zarrs::array::data_type::{
    BoolDataType, Float32DataType, Float64DataType, Int8DataType, Int16DataType, Int32DataType, Int64DataType,
    StringDataType, UInt8DataType, UInt16DataType, UInt32DataType, UInt64DataType,
};
use zarrs::filesystem::FilesystemStore;
use zarrs::group::Group;
use zarrs::storage::ReadableStorageTraits;

use crate::error::{SpatialDataError, corrupt, missing};

type Storage = Arc<dyn ReadableStorageTraits>;
type ZarrArray = Array<dyn ReadableStorageTraits>;

/// A whole array's values, by its type.
pub enum ArrayValues {
    Numbers(Vec<f64>),
    Text(Vec<String>),
}

/// A zarr store on disk, addressed by node paths relative to its root (`images/he_image`).
#[derive(Clone)]
pub struct Store {
    root: PathBuf,
    storage: Storage,
}

impl Store {
    pub fn open(root: &Path) -> Result<Self, SpatialDataError> {
        let storage =
            FilesystemStore::new(root).map_err(|e| corrupt(root, format!("cannot open the zarr store: {e}")))?;
        Ok(Self {
            root: root.to_path_buf(),
            storage: Arc::new(storage),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file-system path of a node.
    pub fn path_of(&self, node: &str) -> PathBuf {
        self.root.join(node)
    }

    fn key(node: &str) -> String {
        format!("/{}", node.trim_matches('/'))
    }

    pub fn is_array(&self, node: &str) -> bool {
        Array::open(self.storage.clone(), &Self::key(node)).is_ok()
    }

    /// A group's attributes (OME-NGFF 0.5's `ome` wrapper removed).
    pub fn group_attributes(&self, node: &str) -> Result<Map<String, Value>, SpatialDataError> {
        let group = Group::open(self.storage.clone(), &Self::key(node))
            .map_err(|e| corrupt(self.path_of(node), format!("not a zarr group: {e}")))?;
        let attrs = group.attributes();
        Ok(match attrs.get("ome").and_then(Value::as_object) {
            Some(ome) => ome.clone(),
            None => attrs.clone(),
        })
    }

    pub fn array_attributes(&self, node: &str) -> Result<Map<String, Value>, SpatialDataError> {
        Ok(self.array(node)?.attributes().clone())
    }

    fn array(&self, node: &str) -> Result<ZarrArray, SpatialDataError> {
        Array::open(self.storage.clone(), &Self::key(node)).map_err(|e| match e {
            zarrs::array::ArrayCreateError::MissingMetadata => missing(self.path_of(node), "the zarr array"),
            other => corrupt(self.path_of(node), other),
        })
    }

    /// Shape of an array.
    pub fn shape(&self, node: &str) -> Result<Vec<u64>, SpatialDataError> {
        Ok(self.array(node)?.shape().to_vec())
    }

    /// A whole numeric or boolean array as f64, in C order.
    pub fn numbers(&self, node: &str) -> Result<Vec<f64>, SpatialDataError> {
        self.numbers_of(&self.array(node)?, node)
    }

    /// A whole 1-D array as text or numbers, by its type; None when `node` is not an array (a
    /// group, or nothing). The array is opened once.
    pub fn values(&self, node: &str) -> Result<Option<ArrayValues>, SpatialDataError> {
        let Ok(array) = self.array(node) else {
            return Ok(None);
        };
        Ok(Some(if array.data_type().is::<StringDataType>() {
            ArrayValues::Text(self.text_of(&array, node)?)
        } else {
            ArrayValues::Numbers(self.numbers_of(&array, node)?)
        }))
    }

    fn text_of(&self, array: &ZarrArray, node: &str) -> Result<Vec<String>, SpatialDataError> {
        let all: Vec<std::ops::Range<u64>> = array.shape().iter().map(|&n| 0..n).collect();
        array
            .retrieve_array_subset::<Vec<String>>(&all)
            .map_err(|e| corrupt(self.path_of(node), e))
    }

    fn numbers_of(&self, array: &ZarrArray, node: &str) -> Result<Vec<f64>, SpatialDataError> {
        let all: Vec<std::ops::Range<u64>> = array.shape().iter().map(|&n| 0..n).collect();
        let failed = |e: zarrs::array::ArrayError| corrupt(self.path_of(node), e);
        let dt = array.data_type();
        macro_rules! read {
            ($t:ty) => {
                array
                    .retrieve_array_subset::<Vec<$t>>(&all)
                    .map_err(failed)?
                    .into_iter()
                    .map(|v| v as f64)
                    .collect()
            };
        }
        Ok(if dt.is::<Float64DataType>() {
            array.retrieve_array_subset::<Vec<f64>>(&all).map_err(failed)?
        } else if dt.is::<Float32DataType>() {
            read!(f32)
        } else if dt.is::<Int8DataType>() {
            read!(i8)
        } else if dt.is::<Int16DataType>() {
            read!(i16)
        } else if dt.is::<Int32DataType>() {
            read!(i32)
        } else if dt.is::<Int64DataType>() {
            read!(i64)
        } else if dt.is::<UInt8DataType>() {
            read!(u8)
        } else if dt.is::<UInt16DataType>() {
            read!(u16)
        } else if dt.is::<UInt32DataType>() {
            read!(u32)
        } else if dt.is::<UInt64DataType>() {
            read!(u64)
        } else if dt.is::<BoolDataType>() {
            array
                .retrieve_array_subset::<Vec<bool>>(&all)
                .map_err(failed)?
                .into_iter()
                .map(|v| if v { 1.0 } else { 0.0 })
                .collect()
        } else {
            return Err(SpatialDataError::Unsupported {
                path: self.path_of(node),
                reason: format!("an array of {dt}, where numbers were expected"),
            });
        })
    }

    /// Whether the array holds 8-bit unsigned samples.
    pub fn is_u8(&self, node: &str) -> bool {
        self.array(node).is_ok_and(|a| a.data_type().is::<UInt8DataType>())
    }

    /// A whole text array (numbers are written as text, so integer ids read too).
    pub fn strings(&self, node: &str) -> Result<Vec<String>, SpatialDataError> {
        let array = self.array(node)?;
        if array.data_type().is::<StringDataType>() {
            return self.text_of(&array, node);
        }
        let integral = |v: f64| v.fract() == 0.0 && v.abs() < 9.0e15;
        Ok(self
            .numbers_of(&array, node)?
            .into_iter()
            .map(|v| {
                if integral(v) {
                    format!("{}", v as i64)
                } else {
                    v.to_string()
                }
            })
            .collect())
    }
}
