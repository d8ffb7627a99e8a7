//! Reading columns of query results as plain Rust values. Text columns may arrive as
//! `Utf8`, `LargeUtf8` or `Utf8View` (DataFusion reads Parquet strings as views) and numbers
//! in any width; each accessor casts to one type first.

use datafusion::arrow::{
    array::{Array, ArrayRef, AsArray},
    compute::cast,
    datatypes::{DataType, Float64Type, Int64Type},
    record_batch::RecordBatch,
};

use super::{LakeError, Result};

fn column(batch: &RecordBatch, i: usize, to: &DataType) -> Result<ArrayRef> {
    let col = batch
        .columns()
        .get(i)
        .ok_or_else(|| LakeError::Other(format!("query result has no column {i}")))?;
    Ok(cast(col, to)?)
}

/// Column `i` cast to `Utf8`, to read with `as_string::<i32>()` without copying the text.
pub fn utf8(batch: &RecordBatch, i: usize) -> Result<ArrayRef> {
    column(batch, i, &DataType::Utf8)
}

/// Column `i` cast to `Int64`, to read with `as_primitive::<Int64Type>()`.
pub fn int64(batch: &RecordBatch, i: usize) -> Result<ArrayRef> {
    column(batch, i, &DataType::Int64)
}

/// Column `i` as text (`None` for nulls).
pub fn texts(batch: &RecordBatch, i: usize) -> Result<Vec<Option<String>>> {
    let col = column(batch, i, &DataType::Utf8)?;
    Ok(col
        .as_string::<i32>()
        .iter()
        .map(|v| v.map(str::to_owned))
        .collect())
}

/// Column `i` as text, nulls as empty text.
pub fn strings(batch: &RecordBatch, i: usize) -> Result<Vec<String>> {
    Ok(texts(batch, i)?
        .into_iter()
        .map(Option::unwrap_or_default)
        .collect())
}

/// Column `i` as integers (timestamps as seconds; `None` for nulls).
pub fn ints(batch: &RecordBatch, i: usize) -> Result<Vec<Option<i64>>> {
    let col = batch
        .columns()
        .get(i)
        .ok_or_else(|| LakeError::Other(format!("query result has no column {i}")))?;
    let col = match col.data_type() {
        DataType::Timestamp(_, _) => cast(&cast(col, &DataType::Int64)?, &DataType::Int64)?,
        _ => cast(col, &DataType::Int64)?,
    };
    let col = col.as_primitive::<Int64Type>();
    Ok((0..col.len())
        .map(|r| col.is_valid(r).then(|| col.value(r)))
        .collect())
}

/// Column `i` as integers, nulls as 0.
pub fn ints_or_zero(batch: &RecordBatch, i: usize) -> Result<Vec<i64>> {
    Ok(ints(batch, i)?
        .into_iter()
        .map(Option::unwrap_or_default)
        .collect())
}

/// Column `i` as floats (`None` for nulls).
pub fn floats(batch: &RecordBatch, i: usize) -> Result<Vec<Option<f64>>> {
    let col = column(batch, i, &DataType::Float64)?;
    let col = col.as_primitive::<Float64Type>();
    Ok((0..col.len())
        .map(|r| col.is_valid(r).then(|| col.value(r)))
        .collect())
}

/// Total rows of a result.
pub fn rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(RecordBatch::num_rows).sum()
}

/// The single integer a `SELECT COUNT(*) …` returns (0 when it returns no row).
pub fn single_int(batches: &[RecordBatch]) -> Result<i64> {
    for b in batches {
        if b.num_rows() > 0 {
            return Ok(ints(b, 0)?.first().copied().flatten().unwrap_or(0));
        }
    }
    Ok(0)
}

/// A number as exports write it: to six decimals, without trailing zeros.
pub fn rounded(f: f64) -> String {
    format!("{}", (f * 1e6).round() / 1e6)
}
