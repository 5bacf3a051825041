//! Giving up every privilege before the program runs: lock the securebits so no exec can grant
//! capabilities back, empty the bounding and ambient sets, empty effective/permitted/inheritable,
//! and set `no_new_privs` (which also makes setuid binaries inert).
//!
//! The order matters: securebits and the bounding set need `CAP_SETPCAP`, so they go first.
//! Man pages: capabilities(7), prctl(2) (PR_SET_SECUREBITS, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS).

use rustix::thread::{
    CapabilitiesSecureBits, CapabilitySet, CapabilitySets, remove_capability_from_bounding_set,
};
use std::io;

/// Highest capability number to drop from the bounding set; unknown ones return EINVAL, which
/// ends the loop.
const LAST_CAP: u32 = 63;

/// The step that failed.
#[derive(Debug, thiserror::Error)]
pub enum CapsError {
    /// PR_SET_SECUREBITS failed.
    #[error("lock securebits: {0}")]
    Securebits(io::Error),
    /// PR_CAPBSET_DROP failed.
    #[error("drop capability {cap} from the bounding set: {source}")]
    Bounding {
        /// The capability number.
        cap: u32,
        /// The OS error.
        source: io::Error,
    },
    /// Clearing the ambient set failed.
    #[error("clear ambient capabilities: {0}")]
    Ambient(io::Error),
    /// capset failed.
    #[error("clear capability sets: {0}")]
    Capset(io::Error),
    /// PR_SET_NO_NEW_PRIVS failed.
    #[error("set no_new_privs: {0}")]
    NoNewPrivs(io::Error),
}

/// Drops every capability of the calling process, for good.
pub fn drop_all() -> Result<(), CapsError> {
    rustix::thread::set_capabilities_secure_bits(
        CapabilitiesSecureBits::NO_ROOT
            | CapabilitiesSecureBits::NO_ROOT_LOCKED
            | CapabilitiesSecureBits::NO_SETUID_FIXUP
            | CapabilitiesSecureBits::NO_SETUID_FIXUP_LOCKED
            | CapabilitiesSecureBits::KEEP_CAPS_LOCKED
            | CapabilitiesSecureBits::NO_CAP_AMBIENT_RAISE
            | CapabilitiesSecureBits::NO_CAP_AMBIENT_RAISE_LOCKED,
    )
    .map_err(|e| CapsError::Securebits(e.into()))?;
    for cap in 0..=LAST_CAP {
        let Some(capability) = Some(CapabilitySet::from_bits_retain(1 << cap)) else {
            break;
        };
        match remove_capability_from_bounding_set(capability) {
            Ok(()) => {}
            Err(rustix::io::Errno::INVAL) => break,
            Err(e) => {
                return Err(CapsError::Bounding {
                    cap,
                    source: e.into(),
                });
            }
        }
    }
    rustix::thread::clear_ambient_capability_set().map_err(|e| CapsError::Ambient(e.into()))?;
    rustix::thread::set_capabilities(
        None,
        CapabilitySets {
            effective: CapabilitySet::empty(),
            permitted: CapabilitySet::empty(),
            inheritable: CapabilitySet::empty(),
        },
    )
    .map_err(|e| CapsError::Capset(e.into()))?;
    rustix::thread::set_no_new_privs(true).map_err(|e| CapsError::NoNewPrivs(e.into()))
}
