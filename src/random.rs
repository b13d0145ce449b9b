//! Random bytes, tokens and UUIDs, from the operating system.
//!
//! *Plumbing: a reader may skip this file.*
//!
//! Mesos needs randomness in a few places: every status update carries a
//! fresh UUID, the file server's upload token must not be guessable, and
//! clients that retry wait a random part of their backoff so that many of
//! them do not knock at the same moment. The operating system provides it,
//! through the `getrandom` crate (the kernel's generator on Linux and
//! macOS, the system's on Windows); if that ever fails, std's
//! randomly seeded hasher mixed with the clock is a weaker but working
//! stand-in.

use std::collections::hash_map::RandomState;
use std::fmt::Write as _;
use std::hash::{BuildHasher, Hasher};
use std::time::{SystemTime, UNIX_EPOCH};

/// `N` random bytes.
pub fn bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    if getrandom::getrandom(&mut bytes).is_err() {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos());
        for (index, chunk) in bytes.chunks_mut(8).enumerate() {
            let mut hasher = RandomState::new().build_hasher();
            hasher.write_u128(nanos);
            hasher.write_u32(std::process::id());
            hasher.write_usize(index);
            let word = hasher.finish().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }
    bytes
}

/// 128 random bits as 32 lowercase hex digits.
pub fn token() -> String {
    let mut token = String::with_capacity(32);
    for byte in bytes::<16>() {
        write!(token, "{byte:02x}").expect("writing to a String");
    }
    token
}

/// A version 4 (random) UUID, as the 16 bytes Mesos puts in
/// `TaskStatus.uuid`.
pub fn uuid_v4() -> [u8; 16] {
    let mut uuid = bytes::<16>();
    // RFC 4122: the high nibble of byte 6 is the version (4: random), the
    // two high bits of byte 8 are the variant (binary 10).
    uuid[6] = (uuid[6] & 0x0f) | 0x40;
    uuid[8] = (uuid[8] & 0x3f) | 0x80;
    uuid
}

/// A random number in `[0, 1)`.
pub fn fraction() -> f64 {
    // 53 random bits fill a double's mantissa exactly.
    (u64::from_le_bytes(bytes::<8>()) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_32_hex_digits_and_differ() {
        let (a, b) = (token(), token());
        assert_eq!(a.len(), 32);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
    }

    #[test]
    fn uuids_have_version_4_and_the_rfc_variant() {
        let (a, b) = (uuid_v4(), uuid_v4());
        assert_eq!(a[6] >> 4, 4);
        assert_eq!(a[8] >> 6, 0b10);
        assert_ne!(a, b);
    }

    #[test]
    fn fractions_stay_in_the_unit_interval_and_vary() {
        let values: Vec<f64> = (0..100).map(|_| fraction()).collect();
        assert!(values.iter().all(|v| (0.0..1.0).contains(v)));
        assert!(values.iter().any(|v| *v > 0.5) && values.iter().any(|v| *v < 0.5));
    }
}
