//! Column-wise reading of Xenium tables, parquet or CSV (optionally gzipped), in batches.
//!
//! Callers name the columns they want and whether each is text or a number; every batch hands
//! them over without one allocation per row (text is one byte buffer with offsets per batch), so
//! tens of millions of boundary vertices stream through quickly.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrayRef};
use arrow_schema::DataType;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::error::{XeniumError, io_error};

const BATCH_ROWS: usize = 65_536;

/// How a column is wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Text; integer columns are given as integers (ids of older runs are integers).
    Text,
    /// A number; nulls and empty CSV fields become NaN.
    Number,
}

#[derive(Debug, Clone, Copy)]
pub struct Wanted<'a> {
    pub name: &'a str,
    pub kind: Kind,
    pub required: bool,
}

impl<'a> Wanted<'a> {
    pub fn text(name: &'a str) -> Self {
        Self {
            name,
            kind: Kind::Text,
            required: true,
        }
    }
    pub fn number(name: &'a str) -> Self {
        Self {
            name,
            kind: Kind::Number,
            required: true,
        }
    }
    pub fn optional(mut self) -> Self {
        self.required = false;
        self
    }
}

/// Text values of one batch: one buffer, `offsets[i]..offsets[i + 1]` per row.
#[derive(Debug, Default, Clone)]
pub struct TextValues {
    bytes: Vec<u8>,
    offsets: Vec<usize>,
}

impl TextValues {
    fn with_capacity(rows: usize) -> Self {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        Self {
            bytes: Vec::new(),
            offsets,
        }
    }
    fn push(&mut self, value: &[u8]) {
        self.bytes.extend_from_slice(value);
        self.offsets.push(self.bytes.len());
    }
    pub fn get(&self, row: usize) -> &[u8] {
        &self.bytes[self.offsets[row]..self.offsets[row + 1]]
    }
}

/// One batch of one column.
#[derive(Debug, Clone)]
pub enum Values {
    Text(TextValues),
    Integer(Vec<i64>),
    Number(Vec<f64>),
}

impl Values {
    /// The value as id bytes: text as is, integers in decimal, integral floats without ".0".
    pub fn id_at<'a>(&'a self, row: usize, scratch: &'a mut String) -> &'a [u8] {
        match self {
            Values::Text(text) => text.get(row),
            Values::Integer(values) => {
                scratch.clear();
                use std::fmt::Write as _;
                let _ = write!(scratch, "{}", values[row]);
                scratch.as_bytes()
            }
            Values::Number(values) => {
                scratch.clear();
                use std::fmt::Write as _;
                let v = values[row];
                if v.fract() == 0.0 && v.abs() < 1e15 {
                    let _ = write!(scratch, "{}", v as i64);
                } else {
                    let _ = write!(scratch, "{v}");
                }
                scratch.as_bytes()
            }
        }
    }

    /// Numbers (only for columns wanted as [`Kind::Number`]).
    pub fn numbers(&self) -> &[f64] {
        match self {
            Values::Number(values) => values,
            _ => &[],
        }
    }
}

/// One batch of rows; `columns[i]` matches `wanted[i]` (None for a missing optional column).
pub struct Batch {
    /// 1-based data row of the batch's first row.
    pub first_row: usize,
    pub rows: usize,
    pub columns: Vec<Option<Values>>,
}

impl Batch {
    /// The column wanted at `index`. Panics only on a programming error (asking for a missing
    /// optional column without checking).
    pub fn column(&self, index: usize) -> Option<&Values> {
        self.columns.get(index).and_then(Option::as_ref)
    }
}

pub fn is_parquet(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("parquet"))
}

/// Which wanted columns the file has, without reading rows.
pub fn column_names(path: &Path) -> Result<Vec<String>, XeniumError> {
    if is_parquet(path) {
        let file = File::open(path).map_err(|e| io_error(path, e))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| corrupt_parquet(path, e))?;
        Ok(builder.schema().fields().iter().map(|f| f.name().clone()).collect())
    } else {
        let mut reader = csv_reader(path)?;
        let headers = reader.headers().map_err(|e| corrupt_csv(path, e))?;
        Ok(headers.iter().map(str::to_owned).collect())
    }
}

/// Rows of a parquet file from its footer (None when it is not parquet or does not open).
pub fn parquet_row_count(path: &Path) -> Option<u64> {
    if !is_parquet(path) {
        return None;
    }
    let file = File::open(path).ok()?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).ok()?;
    u64::try_from(builder.metadata().file_metadata().num_rows()).ok()
}

/// Streams the wanted columns of `path` through `on_batch`.
pub fn read_batches(
    path: &Path,
    wanted: &[Wanted<'_>],
    mut on_batch: impl FnMut(&Batch) -> Result<(), XeniumError>,
) -> Result<(), XeniumError> {
    if is_parquet(path) {
        read_parquet(path, wanted, &mut on_batch)
    } else {
        read_csv(path, wanted, &mut on_batch)
    }
}

fn corrupt_parquet(path: &Path, error: impl std::fmt::Display) -> XeniumError {
    XeniumError::Corrupt {
        file: path.to_path_buf(),
        format: "parquet",
        reason: error.to_string(),
    }
}

fn corrupt_csv(path: &Path, error: impl std::fmt::Display) -> XeniumError {
    XeniumError::Corrupt {
        file: path.to_path_buf(),
        format: "CSV",
        reason: error.to_string(),
    }
}

fn missing_column(path: &Path, name: &str, found: &[String]) -> XeniumError {
    XeniumError::MissingColumn {
        file: path.to_path_buf(),
        column: name.to_owned(),
        found: found.join(", "),
    }
}

fn read_parquet(
    path: &Path,
    wanted: &[Wanted<'_>],
    on_batch: &mut impl FnMut(&Batch) -> Result<(), XeniumError>,
) -> Result<(), XeniumError> {
    let file = File::open(path).map_err(|e| io_error(path, e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| corrupt_parquet(path, e))?;
    let names: Vec<String> = builder.schema().fields().iter().map(|f| f.name().clone()).collect();
    let mut roots = Vec::new();
    for w in wanted {
        match names.iter().position(|n| n == w.name) {
            Some(i) => roots.push(i),
            None if w.required => return Err(missing_column(path, w.name, &names)),
            None => {}
        }
    }
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    let reader = builder
        .with_projection(mask)
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(|e| corrupt_parquet(path, e))?;
    let mut first_row = 1;
    for record_batch in reader {
        let record_batch = record_batch.map_err(|e| corrupt_parquet(path, e))?;
        let schema = record_batch.schema();
        let mut columns = Vec::with_capacity(wanted.len());
        for w in wanted {
            let values = match schema.index_of(w.name) {
                Ok(i) => Some(arrow_values(path, w, record_batch.column(i))?),
                Err(_) => None,
            };
            columns.push(values);
        }
        let batch = Batch {
            first_row,
            rows: record_batch.num_rows(),
            columns,
        };
        on_batch(&batch)?;
        first_row += batch.rows;
    }
    Ok(())
}

fn arrow_values(path: &Path, wanted: &Wanted<'_>, array: &ArrayRef) -> Result<Values, XeniumError> {
    macro_rules! numbers {
        ($t:ty) => {{
            let a = array.as_primitive::<$t>();
            (0..a.len())
                .map(|i| if a.is_null(i) { f64::NAN } else { a.value(i) as f64 })
                .collect::<Vec<f64>>()
        }};
    }
    macro_rules! integers {
        ($t:ty) => {{
            let a = array.as_primitive::<$t>();
            (0..a.len())
                .map(|i| if a.is_null(i) { 0 } else { a.value(i) as i64 })
                .collect::<Vec<i64>>()
        }};
    }
    macro_rules! text {
        ($a:expr) => {{
            let a = $a;
            let mut out = TextValues::with_capacity(a.len());
            for i in 0..a.len() {
                if a.is_null(i) {
                    out.push(b"");
                } else {
                    let v: &[u8] = a.value(i).as_ref();
                    out.push(v);
                }
            }
            out
        }};
    }
    let wrong = |expected: &'static str| XeniumError::WrongType {
        file: path.to_path_buf(),
        column: wanted.name.to_owned(),
        expected,
        found: array.data_type().to_string(),
    };
    let values = match (wanted.kind, array.data_type()) {
        (Kind::Number, DataType::Float64) => Values::Number(numbers!(Float64Type)),
        (Kind::Number, DataType::Float32) => Values::Number(numbers!(Float32Type)),
        (Kind::Number, DataType::Int8) => Values::Number(numbers!(Int8Type)),
        (Kind::Number, DataType::Int16) => Values::Number(numbers!(Int16Type)),
        (Kind::Number, DataType::Int32) => Values::Number(numbers!(Int32Type)),
        (Kind::Number, DataType::Int64) => Values::Number(numbers!(Int64Type)),
        (Kind::Number, DataType::UInt8) => Values::Number(numbers!(UInt8Type)),
        (Kind::Number, DataType::UInt16) => Values::Number(numbers!(UInt16Type)),
        (Kind::Number, DataType::UInt32) => Values::Number(numbers!(UInt32Type)),
        (Kind::Number, DataType::UInt64) => Values::Number(numbers!(UInt64Type)),
        (Kind::Number, DataType::Boolean) => {
            let a = array.as_boolean();
            Values::Number((0..a.len()).map(|i| if a.value(i) { 1.0 } else { 0.0 }).collect())
        }
        (Kind::Number, _) => return Err(wrong("a numeric column")),
        (Kind::Text, DataType::Utf8) => Values::Text(text!(array.as_string::<i32>())),
        (Kind::Text, DataType::LargeUtf8) => Values::Text(text!(array.as_string::<i64>())),
        (Kind::Text, DataType::Utf8View) => Values::Text(text!(array.as_string_view())),
        (Kind::Text, DataType::Binary) => Values::Text(text!(array.as_binary::<i32>())),
        (Kind::Text, DataType::LargeBinary) => Values::Text(text!(array.as_binary::<i64>())),
        (Kind::Text, DataType::BinaryView) => Values::Text(text!(array.as_binary_view())),
        (Kind::Text, DataType::Dictionary(_, value_type))
            if matches!(**value_type, DataType::Utf8 | DataType::LargeUtf8) =>
        {
            let dictionary = array.as_any_dictionary();
            let keys = dictionary.normalized_keys();
            let inner = arrow_values(path, wanted, dictionary.values())?;
            let Values::Text(inner) = inner else {
                return Err(wrong("text"));
            };
            let mut out = TextValues::with_capacity(keys.len());
            for (i, key) in keys.iter().enumerate() {
                if array.is_null(i) {
                    out.push(b"");
                } else {
                    out.push(inner.get(*key));
                }
            }
            Values::Text(out)
        }
        (Kind::Text, DataType::Int8) => Values::Integer(integers!(Int8Type)),
        (Kind::Text, DataType::Int16) => Values::Integer(integers!(Int16Type)),
        (Kind::Text, DataType::Int32) => Values::Integer(integers!(Int32Type)),
        (Kind::Text, DataType::Int64) => Values::Integer(integers!(Int64Type)),
        (Kind::Text, DataType::UInt8) => Values::Integer(integers!(UInt8Type)),
        (Kind::Text, DataType::UInt16) => Values::Integer(integers!(UInt16Type)),
        (Kind::Text, DataType::UInt32) => Values::Integer(integers!(UInt32Type)),
        (Kind::Text, DataType::UInt64) => Values::Integer(integers!(UInt64Type)),
        (Kind::Text, DataType::Float64) => Values::Number(numbers!(Float64Type)),
        (Kind::Text, DataType::Float32) => Values::Number(numbers!(Float32Type)),
        (Kind::Text, _) => return Err(wrong("text or integer ids")),
    };
    Ok(values)
}

fn csv_reader(path: &Path) -> Result<csv::Reader<Box<dyn Read>>, XeniumError> {
    let file = File::open(path).map_err(|e| io_error(path, e))?;
    let gzipped = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gz"));
    let inner: Box<dyn Read> = if gzipped {
        Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(
            1 << 20,
            file,
        )))
    } else {
        Box::new(BufReader::with_capacity(1 << 20, file))
    };
    Ok(csv::ReaderBuilder::new().flexible(false).from_reader(inner))
}

fn parse_number(field: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(field).ok()?.trim();
    if text.is_empty() || text.eq_ignore_ascii_case("na") || text.eq_ignore_ascii_case("nan") {
        return Some(f64::NAN);
    }
    text.parse::<f64>().ok()
}

fn read_csv(
    path: &Path,
    wanted: &[Wanted<'_>],
    on_batch: &mut impl FnMut(&Batch) -> Result<(), XeniumError>,
) -> Result<(), XeniumError> {
    let mut reader = csv_reader(path)?;
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| corrupt_csv(path, e))?
        .iter()
        .map(str::to_owned)
        .collect();
    let mut positions = Vec::with_capacity(wanted.len());
    for w in wanted {
        match headers.iter().position(|h| h == w.name) {
            Some(i) => positions.push(Some(i)),
            None if w.required => return Err(missing_column(path, w.name, &headers)),
            None => positions.push(None),
        }
    }
    let new_columns = || -> Vec<Option<Values>> {
        wanted
            .iter()
            .zip(&positions)
            .map(|(w, p)| {
                p.map(|_| match w.kind {
                    Kind::Text => Values::Text(TextValues::with_capacity(BATCH_ROWS)),
                    Kind::Number => Values::Number(Vec::with_capacity(BATCH_ROWS)),
                })
            })
            .collect()
    };
    let mut columns = new_columns();
    let mut rows = 0;
    let mut first_row = 1;
    let mut record = csv::ByteRecord::new();
    loop {
        let more = reader.read_byte_record(&mut record).map_err(|e| corrupt_csv(path, e))?;
        if more {
            let row = first_row + rows;
            for ((w, position), column) in wanted.iter().zip(&positions).zip(columns.iter_mut()) {
                let (Some(position), Some(column)) = (position, column) else {
                    continue;
                };
                let field = record.get(*position).unwrap_or(b"");
                match column {
                    Values::Text(text) => text.push(field),
                    Values::Number(numbers) => match parse_number(field) {
                        Some(v) => numbers.push(v),
                        None => {
                            return Err(XeniumError::BadValue {
                                file: path.to_path_buf(),
                                column: w.name.to_owned(),
                                row,
                                reason: format!("{:?} is not a number", String::from_utf8_lossy(field)),
                            });
                        }
                    },
                    Values::Integer(_) => {}
                }
            }
            rows += 1;
        }
        if rows == BATCH_ROWS || (!more && rows > 0) {
            let batch = Batch {
                first_row,
                rows,
                columns: std::mem::replace(&mut columns, new_columns()),
            };
            on_batch(&batch)?;
            first_row += rows;
            rows = 0;
        }
        if !more {
            return Ok(());
        }
    }
}
