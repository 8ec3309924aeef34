//! Rows → typed values, per engine, as the Data API maps them: integers as
//! longs, floats as doubles, numerics as exact strings, text, blobs, booleans,
//! dates and times as `YYYY-MM-DD HH:MM:SS[.FFF]` strings, JSON and UUIDs as
//! text, PostgreSQL arrays as arrays, NULL as null.

use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::types::chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use sqlx::types::{BigDecimal, Uuid};
use sqlx::{Column, Row, TypeInfo, ValueRef};

use super::{DbError, Value};

fn decode_error(column: usize, e: sqlx::Error) -> DbError {
    DbError::Statement(format!("column {}: {e}", column + 1))
}

pub(super) fn sqlite(row: &SqliteRow) -> Result<Vec<Value>, DbError> {
    let mut values = Vec::with_capacity(row.len());
    for i in 0..row.len() {
        let raw = row.try_get_raw(i).map_err(|e| decode_error(i, e))?;
        if raw.is_null() {
            values.push(Value::Null);
            continue;
        }
        let err = |e| decode_error(i, e);
        // SQLite's storage class of this value (not the declared type).
        let declared = row.columns()[i].type_info().name();
        let v = match raw.type_info().name() {
            // A column declared BOOLEAN holds 0/1: it reads as a boolean.
            "INTEGER" if declared.eq_ignore_ascii_case("BOOLEAN") => {
                Value::Bool(row.try_get::<i64, _>(i).map_err(err)? != 0)
            }
            "INTEGER" => Value::Long(row.try_get::<i64, _>(i).map_err(err)?),
            "REAL" => Value::Double(row.try_get::<f64, _>(i).map_err(err)?),
            "BLOB" => Value::Blob(row.try_get::<Vec<u8>, _>(i).map_err(err)?),
            "BOOLEAN" => Value::Bool(row.try_get::<bool, _>(i).map_err(err)?),
            _ => Value::String(row.try_get_unchecked::<String, _>(i).map_err(err)?),
        };
        values.push(v);
    }
    Ok(values)
}

const TIMESTAMP: &str = "%Y-%m-%d %H:%M:%S%.f";
const TIME: &str = "%H:%M:%S%.f";

fn decimal(d: &BigDecimal) -> String {
    d.to_plain_string()
}

/// A NUMERIC as PostgreSQL writes it: sqlx's `BigDecimal` drops trailing
/// zeros, so the scale is read from the value's own header (ndigits,
/// weight, sign, dscale) and put back; NaN and the infinities by name.
fn numeric(
    raw: &[u8],
    d: impl FnOnce() -> Result<BigDecimal, sqlx::Error>,
) -> Result<String, sqlx::Error> {
    let word = |i: usize| {
        raw.get(i..i + 2)
            .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]))
    };
    match word(4) {
        0xC000 => return Ok("NaN".into()),
        0xD000 => return Ok("Infinity".into()),
        0xF000 => return Ok("-Infinity".into()),
        _ => {}
    }
    Ok(decimal(&d()?.with_scale(word(6).into())))
}

/// An array column as `arrayValue`'s member name and its elements.
macro_rules! array {
    ($row:expr, $i:expr, $t:ty, $member:literal, $f:expr) => {{
        let items: Vec<Option<$t>> = $row.try_get($i).map_err(|e| decode_error($i, e))?;
        Value::Array(
            $member,
            items
                .into_iter()
                .map(|x| x.map_or(Value::Null, $f))
                .collect(),
        )
    }};
}

pub(super) fn postgres(row: &PgRow) -> Result<Vec<Value>, DbError> {
    let mut values = Vec::with_capacity(row.len());
    for i in 0..row.len() {
        let raw = row.try_get_raw(i).map_err(|e| decode_error(i, e))?;
        if raw.is_null() {
            values.push(Value::Null);
            continue;
        }
        let type_name = raw.type_info().name().to_owned();
        let err = |e| decode_error(i, e);
        let v = match type_name.as_str() {
            "BOOL" => Value::Bool(row.try_get(i).map_err(err)?),
            "INT2" => Value::Long(row.try_get::<i16, _>(i).map_err(err)?.into()),
            "INT4" => Value::Long(row.try_get::<i32, _>(i).map_err(err)?.into()),
            "INT8" => Value::Long(row.try_get(i).map_err(err)?),
            "OID" => Value::Long(
                row.try_get::<sqlx::postgres::types::Oid, _>(i)
                    .map_err(err)?
                    .0
                    .into(),
            ),
            "FLOAT4" => Value::Double(row.try_get::<f32, _>(i).map_err(err)?.into()),
            "FLOAT8" => Value::Double(row.try_get(i).map_err(err)?),
            "NUMERIC" => Value::Decimal(
                numeric(
                    raw.as_bytes()
                        .map_err(|e| DbError::Statement(e.to_string()))?,
                    || row.try_get(i),
                )
                .map_err(err)?,
            ),
            "BYTEA" => Value::Blob(row.try_get(i).map_err(err)?),
            "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" | "CHAR" | "CITEXT" => {
                Value::String(row.try_get_unchecked(i).map_err(err)?)
            }
            "TIMESTAMP" => Value::String(
                row.try_get::<NaiveDateTime, _>(i)
                    .map_err(err)?
                    .format(TIMESTAMP)
                    .to_string(),
            ),
            "TIMESTAMPTZ" => Value::String(
                row.try_get::<DateTime<Utc>, _>(i)
                    .map_err(err)?
                    .format(TIMESTAMP)
                    .to_string(),
            ),
            "DATE" => Value::String(
                row.try_get::<NaiveDate, _>(i)
                    .map_err(err)?
                    .format("%Y-%m-%d")
                    .to_string(),
            ),
            "TIME" => Value::String(
                row.try_get::<NaiveTime, _>(i)
                    .map_err(err)?
                    .format(TIME)
                    .to_string(),
            ),
            "JSON" | "JSONB" => Value::String(
                row.try_get::<serde_json::Value, _>(i)
                    .map_err(err)?
                    .to_string(),
            ),
            "UUID" => Value::String(row.try_get::<Uuid, _>(i).map_err(err)?.to_string()),
            "BOOL[]" => array!(row, i, bool, "booleanValues", Value::Bool),
            "INT2[]" => array!(row, i, i16, "longValues", |x| Value::Long(x.into())),
            "INT4[]" => array!(row, i, i32, "longValues", |x| Value::Long(x.into())),
            "INT8[]" => array!(row, i, i64, "longValues", Value::Long),
            "FLOAT4[]" => array!(row, i, f32, "doubleValues", |x| Value::Double(x.into())),
            "FLOAT8[]" => array!(row, i, f64, "doubleValues", Value::Double),
            "NUMERIC[]" => array!(row, i, BigDecimal, "stringValues", |x| {
                Value::String(decimal(&x))
            }),
            "TEXT[]" | "VARCHAR[]" | "BPCHAR[]" | "NAME[]" => {
                array!(row, i, String, "stringValues", Value::String)
            }
            // Enums: their binary form is their label. Anything else is refused rather than garbled.
            _ => {
                let bytes = raw
                    .as_bytes()
                    .map_err(|e| DbError::Statement(format!("column {}: {e}", i + 1)))?;
                match std::str::from_utf8(bytes) {
                    Ok(t) if !t.chars().any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r') => {
                        Value::String(t.to_owned())
                    }
                    _ => {
                        return Err(DbError::Statement(format!(
                            "column {}: the type {type_name} is not supported by the Data API; cast it (::text)",
                            i + 1
                        )))
                    }
                }
            }
        };
        values.push(v);
    }
    Ok(values)
}
