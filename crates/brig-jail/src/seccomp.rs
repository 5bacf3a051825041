//! Temporary stand-in with the agreed API; replaced by the real module.
#![allow(missing_docs)]
#[derive(Debug, thiserror::Error)]
#[error("seccomp stand-in")]
pub struct SeccompError;
pub struct SeccompPolicy {
    pub allow_network: bool,
}
pub fn compile(_policy: &SeccompPolicy) -> Result<seccompiler::BpfProgram, SeccompError> {
    Ok(Vec::new())
}
pub fn install(_program: &seccompiler::BpfProgram) -> Result<(), SeccompError> {
    Ok(())
}
