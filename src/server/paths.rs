//! Which resource a request path names, decided without ever touching the
//! file system.
//!
//! *Plumbing: a reader may skip this file.*
//!
//! The usual way to get a file server wrong is to join the URL's path to a
//! directory: `/files/../../etc/passwd`, its percent-encoded spelling
//! `%2e%2e%2f`, a backslash on Windows, or a NUL byte then reach files
//! nobody meant to publish. Here a path is only ever *compared*: the text
//! after `/files/` is decoded once and looked up, exactly, among the names
//! the framework registered. Names that may be stored are checked by
//! [`is_safe_name`], so they are plain file names and nothing more.

/// The longest file name served or stored.
pub const MAX_NAME_LEN: usize = 128;

/// What a request path asks for. The names are percent-decoded; `None` means
/// the path did not decode to UTF-8 text, so it can name nothing.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Route {
    /// `/`: the results page.
    Page,
    /// `/files/<name>`: a file registered with `serve_file`.
    File(Option<String>),
    /// `/upload/<name>`: where an executor POSTs a result.
    Upload(Option<String>),
    /// `/output/<name>`: a result stored by an upload.
    Output(Option<String>),
    /// Anything else.
    Unknown,
}

impl Route {
    /// Reads the request target of a request line, such as
    /// `/files/a.png?x=1`. The query string is ignored.
    pub(super) fn parse(target: &str) -> Route {
        let path = target.split(['?', '#']).next().unwrap_or("");
        if path == "/" {
            return Route::Page;
        }
        if let Some(rest) = path.strip_prefix("/files/") {
            Route::File(percent_decode(rest))
        } else if let Some(rest) = path.strip_prefix("/upload/") {
            Route::Upload(percent_decode(rest))
        } else if let Some(rest) = path.strip_prefix("/output/") {
            Route::Output(percent_decode(rest))
        } else {
            Route::Unknown
        }
    }
}

/// Whether `name` is a plain file name: 1 to 128 characters from
/// `A-Z a-z 0-9 . _ -`, not starting with a dot. Such a name has no path
/// separators, cannot be `.` or `..`, and is never a hidden file (the
/// server's own temporary files start with a dot).
pub fn is_safe_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Decodes `%XX` escapes, with the `percent-encoding` crate. `None` for a
/// malformed escape (which that crate would keep as it is: checked here
/// first, so that `%2` or `%+f` names nothing) or a result that is not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let well_formed = text.split('%').skip(1).all(|escape| {
        escape
            .as_bytes()
            .get(..2)
            .is_some_and(|digits| digits.iter().all(u8::is_ascii_hexdigit))
    });
    if !well_formed {
        return None;
    }
    let decoded = percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .ok()?;
    Some(decoded.into_owned())
}

/// Every byte but those of a safe name is percent-encoded in a URL.
const OUTSIDE_SAFE_NAMES: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'.')
    .remove(b'_')
    .remove(b'-');

/// Percent-encodes everything but the characters of a safe name, for a name
/// put into a URL.
pub(super) fn percent_encode(name: &str) -> String {
    percent_encoding::utf8_percent_encode(name, OUTSIDE_SAFE_NAMES).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_decoded_once_and_never_normalised() {
        let file = |name: &str| Route::File(Some(name.to_owned()));
        assert_eq!(Route::parse("/"), Route::Page);
        assert_eq!(Route::parse("/?refresh=1"), Route::Page);
        assert_eq!(Route::parse("/files/a.png"), file("a.png"));
        assert_eq!(Route::parse("/files/a.png?download=1"), file("a.png"));
        assert_eq!(Route::parse("/files/../Cargo.toml"), file("../Cargo.toml"));
        assert_eq!(
            Route::parse("/files/%2e%2e%2fCargo.toml"),
            file("../Cargo.toml")
        );
        assert_eq!(Route::parse("/files/%252e"), file("%2e"));
        assert_eq!(Route::parse("/files/a%00b"), file("a\0b"));
        assert_eq!(Route::parse("/files/..\\x"), file("..\\x"));
        assert_eq!(Route::parse("/files/%ff"), Route::File(None));
        assert_eq!(Route::parse("/files/%2"), Route::File(None));
        assert_eq!(Route::parse("/files/%+f"), Route::File(None));
        assert_eq!(Route::parse("//files/a.png"), Route::Unknown);
        assert_eq!(Route::parse("/files"), Route::Unknown);
        assert_eq!(Route::parse("http://host/files/a.png"), Route::Unknown);
        assert_eq!(
            Route::parse("/upload/r.png"),
            Route::Upload(Some("r.png".into()))
        );
        assert_eq!(
            Route::parse("/output/r.png"),
            Route::Output(Some("r.png".into()))
        );
    }

    #[test]
    fn safe_names_are_plain_file_names() {
        for good in [
            "a.png",
            "inverted-gradient.png",
            "x_1.JPG",
            "a..b",
            &"n".repeat(128),
        ] {
            assert!(is_safe_name(good), "{good}");
        }
        let long = "n".repeat(129);
        for bad in [
            "", ".", "..", ".hidden", "../x", "a/b", "a\\b", "a\0b", "a b", "é.png", "a%2e", &long,
        ] {
            assert!(!is_safe_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn encoding_and_decoding_agree() {
        for name in ["a.png", "a b/c?d", "ünï.png"] {
            assert_eq!(percent_decode(&percent_encode(name)).as_deref(), Some(name));
        }
        assert_eq!(percent_encode("a b"), "a%20b");
    }
}
