//! Unguessable names: upload tokens and temporary file names.
//!
//! *Plumbing: a reader may skip this file.*
//!
//! The kernel's random generator (`/dev/urandom`) is the source, read with
//! plain `std::fs`. Should it be unavailable (a very bare container), the
//! fallback mixes the clock with the standard library's per-process random
//! hash keys: still unique, though weaker than the kernel's randomness.

use std::collections::hash_map::RandomState;
use std::fmt::Write as _;
use std::hash::{BuildHasher, Hasher};
use std::io::Read;
use std::time::{SystemTime, UNIX_EPOCH};

/// 32 lowercase hex digits (128 bits) from the system's random generator.
pub fn random_token() -> String {
    let mut bytes = [0u8; 16];
    let from_kernel = std::fs::File::open("/dev/urandom")
        .and_then(|mut urandom| urandom.read_exact(&mut bytes))
        .is_ok();
    if !from_kernel {
        bytes = fallback_bytes();
    }
    let mut token = String::with_capacity(32);
    for byte in bytes {
        write!(token, "{byte:02x}").expect("writing to a String");
    }
    token
}

/// Each `RandomState::new()` has fresh keys (seeded once per process from the
/// OS, then advanced on every call), so two calls never hash alike.
fn fallback_bytes() -> [u8; 16] {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos());
    let mut bytes = [0u8; 16];
    for (half, chunk) in bytes.chunks_exact_mut(8).enumerate() {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u128(nanos);
        hasher.write_u32(std::process::id());
        hasher.write_usize(half);
        chunk.copy_from_slice(&hasher.finish().to_le_bytes());
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_32_hex_digits_and_differ() {
        let (a, b) = (random_token(), random_token());
        assert_eq!(a.len(), 32);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
    }

    #[test]
    fn the_fallback_also_differs_between_calls() {
        assert_ne!(fallback_bytes(), fallback_bytes());
    }
}
