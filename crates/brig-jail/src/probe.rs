//! What this host supports, for `brig doctor` and for `--tier auto`: each namespace (by trying
//! it in a throwaway child), user-namespace id mapping, cgroups, seccomp, Landlock's ABI, KVM.
//! Placeholder until the doctor lands.
use crate::JailConfig;

/// Whether the namespace tier can run here, or why not.
pub fn namespace_tier_usable(config: &JailConfig) -> Result<(), String> {
    let _ = config;
    Ok(())
}
