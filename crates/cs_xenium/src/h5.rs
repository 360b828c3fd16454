//! Reading typed datasets out of HDF5 files (10x count matrices, AnnData), with errors that name
//! the file, its format and the dataset.

use std::path::Path;

use hdf5_reader::{Datatype, Hdf5File};

use crate::XeniumError;

pub(crate) fn corrupt(path: &Path, format: &'static str, reason: impl Into<String>) -> XeniumError {
    XeniumError::Corrupt {
        file: path.to_path_buf(),
        format,
        reason: reason.into(),
    }
}

pub(crate) fn numbers(path: &Path, file: &Hdf5File, format: &'static str, name: &str) -> Result<Vec<f64>, XeniumError> {
    let dataset = file
        .dataset(name)
        .map_err(|e| corrupt(path, format, format!("{name}: {e}")))?;
    let read_err = |e: hdf5_reader::error::Error| corrupt(path, format, format!("{name}: {e}"));
    macro_rules! as_f64 {
        ($t:ty) => {
            dataset
                .read_array::<$t>()
                .map_err(read_err)?
                .iter()
                .map(|v| *v as f64)
                .collect()
        };
    }
    let values: Vec<f64> = match dataset.dtype() {
        Datatype::FloatingPoint { size: 8, .. } => as_f64!(f64),
        Datatype::FloatingPoint { size: 4, .. } => as_f64!(f32),
        Datatype::FixedPoint {
            size: 8, signed: true, ..
        } => as_f64!(i64),
        Datatype::FixedPoint {
            size: 8, signed: false, ..
        } => as_f64!(u64),
        Datatype::FixedPoint {
            size: 4, signed: true, ..
        } => as_f64!(i32),
        Datatype::FixedPoint {
            size: 4, signed: false, ..
        } => as_f64!(u32),
        Datatype::FixedPoint {
            size: 2, signed: true, ..
        } => as_f64!(i16),
        Datatype::FixedPoint {
            size: 2, signed: false, ..
        } => as_f64!(u16),
        other => return Err(corrupt(path, format, format!("{name} has unsupported type {other:?}"))),
    };
    Ok(values)
}

pub(crate) fn strings(
    path: &Path,
    file: &Hdf5File,
    format: &'static str,
    name: &str,
) -> Result<Vec<String>, XeniumError> {
    let dataset = file
        .dataset(name)
        .map_err(|e| corrupt(path, format, format!("{name}: {e}")))?;
    dataset
        .read_strings()
        .map(|v| v.into_iter().map(|s| s.trim_end_matches('\0').to_owned()).collect())
        .map_err(|e| corrupt(path, format, format!("{name}: {e}")))
}
