//! Judge0 CE 1.13.x (judge0/judge0, docs at ce.judge0.com): `/about`, `/config_info`,
//! `/languages`, `/statuses` and `/submissions`, as pure functions.
//!
//! - [`languages`]: Judge0 CE's language ids for Brig's languages, and the 14 statuses.
//! - [`info`]: the deployment's limits ([`Judge0Config`], Judge0's `app/helpers/config.rb`),
//!   `/about` and `/config_info`.
//! - [`request`]: a submission's body ([`SubmissionRequest`]) and the validated submission
//!   ([`Prepared`]); [`prepare`]: the validation (defaults, Judge0's messages and its 422 shape,
//!   base64) and the Brig `RunRequest` it builds; [`arguments`]: `command_line_arguments` split
//!   as Judge0 runs them.
//! - [`submission`]: Brig's `RunResult` → Judge0's status (the comparison with
//!   `expected_output` of `app/jobs/isolate_job.rb`) and the submission's JSON; [`fields`]:
//!   `?fields=`.

pub mod arguments;
pub mod fields;
pub mod info;
pub mod languages;
pub mod prepare;
pub mod request;
pub mod submission;

pub use info::{Judge0Config, about, config_info};
pub use languages::{ALIASES, Judge0Language, Judge0Status, LANGUAGES, STATUSES};
pub use submission::{Prepared, Submission, SubmissionRequest, select_fields, status_for};

use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// A request Judge0 refuses, in Judge0's shapes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Judge0Error {
    /// Model validation failed: `422 {"field": ["message", ...]}` (Rails' `errors` hash).
    #[error("invalid submission: {0:?}")]
    Invalid(BTreeMap<String, Vec<String>>),
    /// A request-level refusal: `400 {"error": "..."}` (`invalid fields: [x]`, `wait not
    /// allowed`...).
    #[error("{0}")]
    BadRequest(String),
    /// No such submission or language: `404 {"error": "Not Found"}`.
    #[error("Not Found")]
    NotFound,
}

impl Judge0Error {
    /// One field's validation error.
    pub fn invalid(field: &str, message: impl Into<String>) -> Judge0Error {
        Judge0Error::Invalid(BTreeMap::from([(field.to_string(), vec![message.into()])]))
    }

    /// The HTTP status Judge0 answers with.
    pub fn http_status(&self) -> u16 {
        match self {
            Judge0Error::Invalid(_) => 422,
            Judge0Error::BadRequest(_) => 400,
            Judge0Error::NotFound => 404,
        }
    }

    /// The JSON body Judge0 answers with.
    pub fn body(&self) -> Value {
        match self {
            Judge0Error::Invalid(errors) => Value::Object(
                errors
                    .iter()
                    .map(|(k, v)| (k.clone(), json!(v)))
                    .collect::<Map<_, _>>(),
            ),
            Judge0Error::BadRequest(message) => json!({ "error": message }),
            Judge0Error::NotFound => json!({ "error": "Not Found" }),
        }
    }
}
