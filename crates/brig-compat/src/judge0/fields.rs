//! `?fields=` (`app/services/fields/*.rb`): the default set, `*`, or a list of a submission's
//! fields; an unknown one is refused in Judge0's words.

use serde_json::{Map, Value};

use super::Judge0Error;

/// The default `?fields=`.
pub const DEFAULT_FIELDS: [&str; 8] = [
    "token",
    "time",
    "memory",
    "stdout",
    "stderr",
    "compile_output",
    "message",
    "status",
];

/// `?fields=`: a comma-separated list of a submission's fields; empty or absent means
/// [`DEFAULT_FIELDS`], `*` means all. An unknown field is Judge0's
/// `400 {"error": "invalid fields: [a, b]"}`. `value` is [`super::Submission::to_value`]'s.
pub fn select_fields(value: &Value, fields: Option<&str>) -> Result<Value, Judge0Error> {
    let Some(all) = value.as_object() else {
        return Ok(value.clone());
    };
    let fields = fields.map(str::trim).unwrap_or("");
    if fields == "*" {
        return Ok(value.clone());
    }
    let wanted: Vec<&str> = if fields.is_empty() {
        DEFAULT_FIELDS.to_vec()
    } else {
        fields
            .split(',')
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .collect()
    };
    let invalid: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|f| !all.contains_key(*f))
        .collect();
    if !invalid.is_empty() {
        return Err(Judge0Error::BadRequest(format!(
            "invalid fields: [{}]",
            invalid.join(", ")
        )));
    }
    Ok(Value::Object(
        wanted
            .into_iter()
            .filter_map(|f| Some((f.to_string(), all.get(f)?.clone())))
            .collect::<Map<_, _>>(),
    ))
}
