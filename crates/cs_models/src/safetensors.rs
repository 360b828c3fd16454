//! A reader for `.safetensors` files (the format timm and Hugging Face save weights in): an
//! 8-byte little-endian header length, a JSON header naming each tensor's dtype, shape and byte
//! range, then the raw little-endian data. Tensors are read one at a time, so a multi-gigabyte
//! checkpoint never sits in memory twice. Float tensors (F32, F16, BF16, F64) are widened or
//! narrowed to f32.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::ModelError;

/// Largest header accepted (the format's own limit is 100 MB).
const MAX_HEADER_BYTES: u64 = 100 * 1024 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dtype {
    F64,
    F32,
    F16,
    BF16,
    U8,
}

impl Dtype {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "F64" => Dtype::F64,
            "F32" => Dtype::F32,
            "F16" => Dtype::F16,
            "BF16" => Dtype::BF16,
            "U8" => Dtype::U8,
            _ => return None,
        })
    }

    fn bytes(self) -> usize {
        match self {
            Dtype::F64 => 8,
            Dtype::F32 => 4,
            Dtype::F16 | Dtype::BF16 => 2,
            Dtype::U8 => 1,
        }
    }
}

#[derive(Clone, Debug)]
pub struct TensorInfo {
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    /// Byte range from the start of the data section.
    begin: u64,
    end: u64,
}

/// An open safetensors file: its header parsed and checked, data read on demand.
pub struct SafeTensors {
    path: PathBuf,
    file: File,
    data_start: u64,
    tensors: BTreeMap<String, TensorInfo>,
}

impl SafeTensors {
    pub fn open(path: &Path) -> Result<Self, ModelError> {
        let error = |reason: String| ModelError::File {
            path: path.to_path_buf(),
            reason,
        };
        let mut file = File::open(path).map_err(|e| error(e.to_string()))?;
        let file_len = file.metadata().map_err(|e| error(e.to_string()))?.len();
        let mut len_bytes = [0u8; 8];
        file.read_exact(&mut len_bytes)
            .map_err(|_| error("too short to be a safetensors file".into()))?;
        let header_len = u64::from_le_bytes(len_bytes);
        if header_len > MAX_HEADER_BYTES || 8 + header_len > file_len {
            return Err(error(format!(
                "not a safetensors file (header length {header_len} in a file of {file_len} bytes)"
            )));
        }
        let mut header = vec![0u8; header_len as usize];
        file.read_exact(&mut header).map_err(|e| error(e.to_string()))?;
        let json: serde_json::Value = serde_json::from_slice(&header)
            .map_err(|e| error(format!("the safetensors header is not valid JSON: {e}")))?;
        let entries = json
            .as_object()
            .ok_or_else(|| error("the safetensors header is not a JSON object".into()))?;
        let data_start = 8 + header_len;
        let data_len = file_len - data_start;
        let mut tensors = BTreeMap::new();
        for (name, entry) in entries {
            if name == "__metadata__" {
                continue;
            }
            let bad = |what: &str| error(format!("tensor {name:?}: {what}"));
            let dtype_name = entry["dtype"].as_str().ok_or_else(|| bad("no dtype"))?;
            let dtype = Dtype::parse(dtype_name).ok_or_else(|| bad(&format!("unsupported dtype {dtype_name}")))?;
            let shape: Vec<usize> = entry["shape"]
                .as_array()
                .ok_or_else(|| bad("no shape"))?
                .iter()
                .map(|d| d.as_u64().map(|d| d as usize))
                .collect::<Option<_>>()
                .ok_or_else(|| bad("the shape is not a list of sizes"))?;
            let offsets = entry["data_offsets"].as_array().ok_or_else(|| bad("no data_offsets"))?;
            let (Some(begin), Some(end)) = (
                offsets.first().and_then(|v| v.as_u64()),
                offsets.get(1).and_then(|v| v.as_u64()),
            ) else {
                return Err(bad("data_offsets is not [begin, end]"));
            };
            let expected = shape.iter().product::<usize>() as u64 * dtype.bytes() as u64;
            if end < begin || end - begin != expected {
                return Err(bad(&format!(
                    "holds {} bytes, its shape needs {expected}",
                    end.saturating_sub(begin)
                )));
            }
            if end > data_len {
                return Err(bad("runs past the end of the file (truncated download?)"));
            }
            tensors.insert(
                name.clone(),
                TensorInfo {
                    dtype,
                    shape,
                    begin,
                    end,
                },
            );
        }
        Ok(Self {
            path: path.to_path_buf(),
            file,
            data_start,
            tensors,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    pub fn info(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.get(name)
    }

    fn error(&self, reason: String) -> ModelError {
        ModelError::File {
            path: self.path.clone(),
            reason,
        }
    }

    fn raw(&self, name: &str) -> Result<(&TensorInfo, Vec<u8>), ModelError> {
        let info = self
            .tensors
            .get(name)
            .ok_or_else(|| self.error(format!("has no tensor {name:?}")))?;
        let mut bytes = vec![0u8; (info.end - info.begin) as usize];
        let mut file = &self.file;
        file.seek(SeekFrom::Start(self.data_start + info.begin))
            .and_then(|_| file.read_exact(&mut bytes))
            .map_err(|e| self.error(format!("reading {name:?}: {e}")))?;
        Ok((info, bytes))
    }

    /// A float tensor as f32 values (row-major) and its shape.
    pub fn read_f32(&self, name: &str) -> Result<(Vec<f32>, Vec<usize>), ModelError> {
        let (info, bytes) = self.raw(name)?;
        let values = match info.dtype {
            Dtype::F32 => bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::F64 => bytes
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32)
                .collect(),
            Dtype::F16 => bytes
                .chunks_exact(2)
                .map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]])))
                .collect(),
            Dtype::BF16 => bytes
                .chunks_exact(2)
                .map(|b| f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16))
                .collect(),
            Dtype::U8 => return Err(self.error(format!("tensor {name:?} holds bytes, not floats"))),
        };
        Ok((values, info.shape.clone()))
    }

    /// A U8 tensor and its shape.
    pub fn read_u8(&self, name: &str) -> Result<(Vec<u8>, Vec<usize>), ModelError> {
        let (info, bytes) = self.raw(name)?;
        if info.dtype != Dtype::U8 {
            return Err(self.error(format!("tensor {name:?} is {:?}, not U8", info.dtype)));
        }
        Ok((bytes, info.shape.clone()))
    }
}

/// IEEE half to single precision, subnormals included.
fn f16_to_f32(half: u16) -> f32 {
    let sign = u32::from(half >> 15) << 31;
    let exponent = u32::from((half >> 10) & 0x1f);
    let mantissa = u32::from(half & 0x3ff);
    let bits = match (exponent, mantissa) {
        (0, 0) => sign,
        (0, m) => {
            // Subnormal: normalise the mantissa.
            let shift = m.leading_zeros() - 21;
            let m = (m << shift) & 0x3ff;
            sign | ((127 - 15 + 1 - shift) << 23) | (m << 13)
        }
        (0x1f, m) => sign | 0x7f80_0000 | (m << 13),
        (e, m) => sign | ((e + 127 - 15) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

/// Writes `tensors` (name, shape, values) as an F32 safetensors file; the header is padded to
/// 8 bytes as the format asks. Used to make weights files of a given architecture (benchmarks,
/// tests) and readable by the Python `safetensors` package.
pub fn write_f32(path: &Path, tensors: &[(String, Vec<usize>, Vec<f32>)]) -> Result<(), ModelError> {
    let error = |reason: String| ModelError::File {
        path: path.to_path_buf(),
        reason,
    };
    let mut header = serde_json::Map::new();
    let mut offset = 0usize;
    for (name, shape, values) in tensors {
        if shape.iter().product::<usize>() != values.len() {
            return Err(error(format!(
                "tensor {name:?} has {} values for shape {shape:?}",
                values.len()
            )));
        }
        let end = offset + values.len() * 4;
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [offset, end]}),
        );
        offset = end;
    }
    let mut header = serde_json::Value::Object(header).to_string().into_bytes();
    header.resize(header.len().next_multiple_of(8), b' ');
    let file = File::create(path).map_err(|e| error(e.to_string()))?;
    let mut out = std::io::BufWriter::new(file);
    let mut write = |bytes: &[u8]| out.write_all(bytes).map_err(|e| error(e.to_string()));
    write(&(header.len() as u64).to_le_bytes())?;
    write(&header)?;
    for (_, _, values) in tensors {
        for v in values {
            write(&v.to_le_bytes())?;
        }
    }
    out.flush().map_err(|e| error(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_file(header: &str, data: &[u8]) -> tempfile_path::TempPath {
        let path = tempfile_path::TempPath::new("safetensors");
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(data);
        std::fs::write(&path.0, bytes).unwrap();
        path
    }

    /// A file in the temp folder, removed when dropped.
    mod tempfile_path {
        pub struct TempPath(pub std::path::PathBuf);
        impl TempPath {
            pub fn new(tag: &str) -> Self {
                static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
                let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Self(std::env::temp_dir().join(format!("cs_models_{tag}_{}_{n}", std::process::id())))
            }
        }
        impl Drop for TempPath {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
    }

    #[test]
    fn reads_f32_f16_and_bf16_tensors() {
        let mut data = Vec::new();
        for v in [1.5f32, -2.0] {
            data.extend_from_slice(&v.to_le_bytes());
        }
        // f16: 1.0 = 0x3c00, -0.5 = 0xb800, smallest subnormal 2^-24 = 0x0001.
        for h in [0x3c00u16, 0xb800, 0x0001] {
            data.extend_from_slice(&h.to_le_bytes());
        }
        // bf16: 3.0 = 0x4040.
        data.extend_from_slice(&0x4040u16.to_le_bytes());
        let header = r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F16","shape":[3],"data_offsets":[8,14]},"c":{"dtype":"BF16","shape":[1,1],"data_offsets":[14,16]},"__metadata__":{"format":"pt"}}"#;
        let file = write_file(header, &data);
        let st = SafeTensors::open(&file.0).unwrap();
        assert_eq!(st.read_f32("a").unwrap(), (vec![1.5, -2.0], vec![2]));
        let (b, _) = st.read_f32("b").unwrap();
        assert_eq!(b[..2], [1.0, -0.5]);
        assert!((b[2] - 2f32.powi(-24)).abs() < 1e-12);
        assert_eq!(st.read_f32("c").unwrap(), (vec![3.0], vec![1, 1]));
        assert_eq!(st.names().collect::<Vec<_>>(), ["a", "b", "c"]);
    }

    #[test]
    fn truncated_and_malformed_files_name_the_problem() {
        let header = r#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#;
        let file = write_file(header, &[0u8; 8]);
        let message = SafeTensors::open(&file.0).err().unwrap().to_string();
        assert!(message.contains("truncated"), "{message}");
        assert!(message.contains(&file.0.display().to_string()), "{message}");

        let file = write_file(r#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, &[0u8; 8]);
        let message = SafeTensors::open(&file.0).err().unwrap().to_string();
        assert!(message.contains("its shape needs 12"), "{message}");

        let file = write_file("not json", &[]);
        let message = SafeTensors::open(&file.0).err().unwrap().to_string();
        assert!(message.contains("not valid JSON"), "{message}");

        let path = tempfile_path::TempPath::new("short");
        std::fs::write(&path.0, [1u8, 2, 3]).unwrap();
        let message = SafeTensors::open(&path.0).err().unwrap().to_string();
        assert!(message.contains("too short"), "{message}");
    }

    #[test]
    fn written_files_read_back() {
        let path = tempfile_path::TempPath::new("written");
        let tensors = vec![
            ("w".to_string(), vec![2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
            ("b".to_string(), vec![1], vec![-0.25]),
        ];
        write_f32(&path.0, &tensors).unwrap();
        let st = SafeTensors::open(&path.0).unwrap();
        assert_eq!(st.read_f32("w").unwrap(), (tensors[0].2.clone(), vec![2, 3]));
        assert_eq!(st.read_f32("b").unwrap(), (vec![-0.25], vec![1]));
        let bad = vec![("x".to_string(), vec![2], vec![1.0])];
        assert!(write_f32(&path.0, &bad).err().unwrap().to_string().contains("\"x\""));
    }
}
