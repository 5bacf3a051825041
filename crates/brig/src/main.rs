//! The brig command.
fn main() {}
