//! `callback_url`: a finished submission `PUT` to the URL its request named, as Judge0 does
//! (`app/jobs/isolate_job.rb`, `call_callback`).

use brig_compat::judge0::{Submission, select_fields};
use std::time::Duration;

use crate::state::AppState;

/// `PUT`s a finished submission to its `callback_url` (Judge0's default fields, base64), in
/// the background, with a few tries. Plain `http://` only: https needs a TLS feature of
/// reqwest, which brig-server leaves out.
pub fn callback(state: &AppState, submission: &Submission) {
    let Some(url) = submission.prepared.callback_url.clone() else {
        return;
    };
    let config = &state.inner.config.judge0;
    let tries = config.callbacks_max_tries.max(1);
    let timeout = Duration::from_secs_f64(config.callbacks_timeout.clamp(0.1, 60.0));
    let body = select_fields(&submission.to_value(true), None)
        .unwrap_or_default()
        .to_string();
    let token = submission.token.clone();
    tokio::spawn(async move {
        let client = match reqwest::Client::builder().timeout(timeout).build() {
            Ok(client) => client,
            Err(e) => return tracing::warn!(error = %e, "callback client"),
        };
        for attempt in 1..=tries {
            let sent = client
                .put(&url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
                .send()
                .await;
            match sent {
                Ok(response) if response.status().is_success() => return,
                Ok(response) => {
                    tracing::warn!(%token, status = %response.status(), attempt, "callback refused")
                }
                Err(e) => tracing::warn!(%token, error = %e, attempt, "callback failed"),
            }
            tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
        }
    });
}
