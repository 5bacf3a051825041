//! brig-compat: the pure translation layer behind Brig's Piston v2 and Judge0 CE APIs.
//!
//! Existing clients of those two services (the official Judge0 SDK, Piston's client libraries)
//! must work against `brig serve` unchanged. This crate holds no HTTP: it has the request and
//! response types of each API, in their documented shapes, and pure functions from them to
//! Brig's [`brig_engine::RunRequest`] and from Brig's [`brig_core::RunResult`] back, so that the
//! server's handlers stay thin (parse, call, run, call, answer).
//!
//! - [`piston`]: `GET /api/v2/runtimes`, `POST /api/v2/execute` (engineer-man/piston,
//!   `api/src/api/v2.js`, `api/src/job.js`, `api/src/runtime.js`), with [`semver`] for its
//!   version ranges.
//! - [`judge0`]: `/about`, `/config_info`, `/languages`, `/statuses`, `/submissions`
//!   (judge0/judge0 1.13.x: `app/models/submission.rb`, `app/jobs/isolate_job.rb`,
//!   `app/serializers/submission_serializer.rb`, `app/helpers/config.rb`,
//!   `app/enumerations/status.rb`).
//!
//! The mappings, statuses and memory-limit kills above all, are described in this crate's
//! `README.md`.

pub mod encoding;
pub mod judge0;
pub mod piston;
pub mod semver;
pub mod signals;
