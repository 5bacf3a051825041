//! Encryption at rest with XChaCha20-Poly1305 (RustCrypto `chacha20poly1305`), and key rotation.
//!
//! Every sensitive value (user code, the result JSON with stdout and stderr, stored idempotent
//! response bodies) is sealed on its own, with a fresh random 24-byte nonce — XChaCha's long
//! nonce makes random nonces safe for any realistic number of values under one key. A sealed
//! value is self-describing:
//!
//! ```text
//! version (1 byte = 1) | key id length (1 byte) | key id (UTF-8) | nonce (24 bytes) | ciphertext + tag
//! ```
//!
//! The header and a context string naming the column and row (`execution.code/<id>`) are the
//! AEAD's associated data, so a ciphertext copied into another row or relabelled with another
//! key id fails to open instead of decrypting to the wrong thing.
//!
//! Rotation: a [`Cipher`] seals with its current key and opens with the current key or any old
//! key added by [`Cipher::with_old_key`], picked by the id in the header. Rows are not
//! re-encrypted in place; old keys stay configured until the data sealed with them has expired.

use crate::error::StoreError;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// The format version written in the first byte of every sealed value.
const VERSION: u8 = 1;
/// XChaCha20's nonce length.
const NONCE_LEN: usize = 24;

/// The key ring: one current key that seals, and older keys that still open.
///
/// Cheap to clone. `Debug` shows key ids only, never key bytes.
#[derive(Clone)]
pub struct Cipher {
    current: Arc<str>,
    keys: Arc<BTreeMap<String, XChaCha20Poly1305>>,
}

impl Cipher {
    /// A key ring whose current key is `key` under the id `key_id`.
    ///
    /// # Panics
    /// If `key_id` is empty or longer than 255 bytes (it is stored in a one-byte length
    /// prefix). [`Cipher::from_base64`] reports the same problem as an error instead.
    pub fn new(key_id: impl Into<String>, key: [u8; 32]) -> Cipher {
        let key_id = key_id.into();
        if let Err(e) = check_key_id(&key_id) {
            panic!("{e}");
        }
        let mut keys = BTreeMap::new();
        keys.insert(key_id.clone(), XChaCha20Poly1305::new(&key.into()));
        Cipher {
            current: key_id.into(),
            keys: Arc::new(keys),
        }
    }

    /// The key ring with its current key decoded from base64 (standard or URL-safe alphabet,
    /// padding optional; must decode to exactly 32 bytes).
    pub fn from_base64(key_id: &str, key_base64: &str) -> Result<Cipher, StoreError> {
        check_key_id(key_id)?;
        Ok(Cipher::new(key_id, decode_key(key_id, key_base64)?))
    }

    /// A key ring with a fresh random key, under an id like `generated-1a2b3c4d`. Values
    /// sealed with it are lost when the process ends unless the key is saved elsewhere: meant
    /// for tests and throwaway development servers.
    pub fn generate() -> Cipher {
        let mut key = [0u8; 32];
        fill_random(&mut key);
        let id = uuid::Uuid::new_v4().simple().to_string();
        Cipher::new(format!("generated-{}", &id[..8]), key)
    }

    /// A fresh random 32-byte key, base64-encoded (for `brig serve` to print or save once).
    pub fn generate_key_base64() -> String {
        let mut key = [0u8; 32];
        fill_random(&mut key);
        base64::engine::general_purpose::STANDARD.encode(key)
    }

    /// Adds an older key that is used only to open values sealed under `key_id`. The current
    /// key keeps its id: an old key with the current key's id is ignored.
    ///
    /// # Panics
    /// If `key_id` is empty or longer than 255 bytes.
    pub fn with_old_key(self, key_id: impl Into<String>, key: [u8; 32]) -> Cipher {
        let key_id = key_id.into();
        if let Err(e) = check_key_id(&key_id) {
            panic!("{e}");
        }
        let mut keys = Arc::unwrap_or_clone(self.keys);
        if key_id.as_str() != &*self.current {
            keys.insert(key_id, XChaCha20Poly1305::new(&key.into()));
        }
        Cipher {
            current: self.current,
            keys: Arc::new(keys),
        }
    }

    /// [`Cipher::with_old_key`] with the key in base64, as in [`Cipher::from_base64`].
    pub fn with_old_key_base64(self, key_id: &str, key_base64: &str) -> Result<Cipher, StoreError> {
        check_key_id(key_id)?;
        let key = decode_key(key_id, key_base64)?;
        Ok(self.with_old_key(key_id, key))
    }

    /// The id of the key that seals new values.
    pub fn key_id(&self) -> &str {
        &self.current
    }

    /// Seals `plaintext` under the current key, bound to `context` (which column of which row).
    pub(crate) fn encrypt(&self, plaintext: &[u8], context: &str) -> Result<Vec<u8>, StoreError> {
        let aead = &self.keys[&*self.current];
        let mut out = header(&self.current);
        let mut nonce = [0u8; NONCE_LEN];
        fill_random(&mut nonce);
        let aad = [out.as_slice(), context.as_bytes()].concat();
        let sealed = aead
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| {
                StoreError::Crypto(format!("cannot encrypt with key `{}`", self.current))
            })?;
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens a value sealed by [`Cipher::encrypt`] with the same `context`.
    pub(crate) fn decrypt(&self, stored: &[u8], context: &str) -> Result<Vec<u8>, StoreError> {
        let truncated = || StoreError::Crypto(format!("the stored {context} is truncated"));
        let (&version, rest) = stored.split_first().ok_or_else(truncated)?;
        if version != VERSION {
            return Err(StoreError::Crypto(format!(
                "the stored {context} has format version {version}; this build reads version \
                 {VERSION}"
            )));
        }
        let (&id_len, rest) = rest.split_first().ok_or_else(truncated)?;
        let id_len = usize::from(id_len);
        if rest.len() < id_len + NONCE_LEN {
            return Err(truncated());
        }
        let (id, rest) = rest.split_at(id_len);
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let id = String::from_utf8_lossy(id);
        let aead = self.keys.get(&*id).ok_or_else(|| {
            StoreError::Crypto(format!(
                "the stored {context} was encrypted with key `{id}`, which is not configured \
                 (current key is `{}`; add `{id}` as an old key to read it)",
                self.current
            ))
        })?;
        let aad = [&stored[..2 + id_len], context.as_bytes()].concat();
        aead.decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: sealed,
                aad: &aad,
            },
        )
        .map_err(|_| {
            StoreError::Crypto(format!(
                "the stored {context} does not authenticate under key `{id}`: the key bytes \
                 configured for `{id}` are wrong, or the value was altered"
            ))
        })
    }
}

impl fmt::Debug for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cipher")
            .field("current", &self.current)
            .field("keys", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// `version | id length | id`: the start of every sealed value.
fn header(key_id: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + key_id.len() + NONCE_LEN + 64);
    out.push(VERSION);
    // check_key_id bounds the length to 255 when the key is added.
    out.push(key_id.len() as u8);
    out.extend_from_slice(key_id.as_bytes());
    out
}

fn check_key_id(key_id: &str) -> Result<(), StoreError> {
    if key_id.is_empty() || key_id.len() > 255 {
        return Err(StoreError::Crypto(format!(
            "key id `{key_id}` must be 1 to 255 bytes long"
        )));
    }
    Ok(())
}

fn decode_key(key_id: &str, key_base64: &str) -> Result<[u8; 32], StoreError> {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let text = key_base64.trim().trim_end_matches('=');
    let bytes = STANDARD_NO_PAD
        .decode(text)
        .or_else(|_| URL_SAFE_NO_PAD.decode(text))
        .map_err(|_| StoreError::Crypto(format!("key `{key_id}` is not valid base64")))?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
        StoreError::Crypto(format!(
            "key `{key_id}` must decode to 32 bytes, not {} (generate one with `openssl rand \
             -base64 32`)",
            bytes.len()
        ))
    })
}

/// Fills `buf` from the operating system's CSPRNG. A machine without one cannot run Brig
/// safely at all, so failing here is not a recoverable condition.
pub(crate) fn fill_random(buf: &mut [u8]) {
    getrandom::fill(buf).expect("the operating system's random number generator failed");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_format() {
        let c = Cipher::new("k1", [7; 32]);
        let sealed = c.encrypt(b"hello", "t/1").unwrap();
        assert_eq!(sealed[0], VERSION);
        assert_eq!(sealed[1], 2);
        assert_eq!(&sealed[2..4], b"k1");
        assert_eq!(sealed.len(), 4 + NONCE_LEN + 5 + 16);
        assert_eq!(c.decrypt(&sealed, "t/1").unwrap(), b"hello");
        // A fresh nonce each time.
        assert_ne!(sealed, c.encrypt(b"hello", "t/1").unwrap());
    }

    #[test]
    fn context_and_tampering_fail() {
        let c = Cipher::new("k1", [7; 32]);
        let mut sealed = c.encrypt(b"hello", "t/1").unwrap();
        assert!(c.decrypt(&sealed, "t/2").is_err());
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        let err = c.decrypt(&sealed, "t/1").unwrap_err().to_string();
        assert!(err.contains("`k1`"), "{err}");
        assert!(c.decrypt(&sealed[..10], "t/1").is_err());
    }

    #[test]
    fn rotation_and_unknown_key() {
        let old = Cipher::new("k1", [1; 32]);
        let sealed = old.encrypt(b"secret", "x").unwrap();
        let rotated = Cipher::new("k2", [2; 32]).with_old_key("k1", [1; 32]);
        assert_eq!(rotated.key_id(), "k2");
        assert_eq!(rotated.decrypt(&sealed, "x").unwrap(), b"secret");
        assert_eq!(&rotated.encrypt(b"new", "x").unwrap()[2..4], b"k2");
        let err = Cipher::new("k2", [2; 32])
            .decrypt(&sealed, "x")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`k1`") && err.contains("not configured"),
            "{err}"
        );
        // Right id, wrong bytes.
        let err = Cipher::new("k1", [9; 32])
            .decrypt(&sealed, "x")
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not authenticate"), "{err}");
    }

    #[test]
    fn base64_keys() {
        let b64 = Cipher::generate_key_base64();
        let c = Cipher::from_base64("main", &b64).unwrap();
        assert_eq!(c.key_id(), "main");
        let err = Cipher::from_base64("main", "c2hvcnQ=")
            .unwrap_err()
            .to_string();
        assert!(err.contains("32 bytes") && err.contains("`main`"), "{err}");
        assert!(Cipher::from_base64("main", "not base64!").is_err());
        assert!(Cipher::from_base64("", &b64).is_err());
        let debug = format!("{:?}", c.with_old_key_base64("old", &b64).unwrap());
        assert!(debug.contains("main") && debug.contains("old") && !debug.contains(&b64));
    }

    #[test]
    fn generated_keys_differ() {
        let a = Cipher::generate();
        let b = Cipher::generate();
        assert_ne!(a.key_id(), b.key_id());
        let sealed = a.encrypt(b"v", "c").unwrap();
        assert!(b.decrypt(&sealed, "c").is_err());
    }
}
