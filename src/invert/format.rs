//! Decoding and encoding for [`invert_image`](super::invert_image): which
//! bytes count as an image, and how large one may be.
//!
//! *Hardening: a reader may skip this file.*
//!
//! - **The input is untrusted.** The executor downloads whatever the image
//!   URL returns. We accept PNG and JPEG only, recognised by their first
//!   bytes (never by a URL's extension or a `Content-Type`).
//! - **Decompression bombs.** A 100 KB PNG can claim to be 100000×100000
//!   pixels: 40 GB once decoded, far more than the memory the task was
//!   given, and Mesos kills a task that exceeds its memory limit. [`Limits`]
//!   are checked against the image header *before* the pixel buffer is
//!   allocated, so such a file fails with [`InvertError::TooLarge`] instead.
//! - **Cut-off files.** A JPEG that ends before its end-of-image marker is
//!   corrupt, though the decoder would paint the rest grey.

use image::{DynamicImage, ImageFormat, ImageReader};
use std::fmt;
use std::io::Cursor;

/// The JPEG quality of inverted JPEGs: high, because a JPEG loses detail
/// each time it is re-encoded.
const JPEG_QUALITY: u8 = 95;

/// Decodes a PNG or JPEG image within `limits`, and says which it was.
pub(super) fn decode(
    bytes: &[u8],
    limits: &Limits,
) -> Result<(DynamicImage, ImageFormat), InvertError> {
    let format = match image::guess_format(bytes) {
        Ok(format @ (ImageFormat::Png | ImageFormat::Jpeg)) => format,
        Ok(other) => return Err(InvertError::UnsupportedFormat(format!("{other:?}"))),
        Err(_) => {
            return Err(InvertError::NotAnImage(
                bytes[..bytes.len().min(8)].to_vec(),
            ))
        }
    };
    if format == ImageFormat::Jpeg && !jpeg_is_complete(bytes) {
        // The JPEG decoder paints the missing part of a cut-off file grey
        // and reports success; a half-downloaded photo must fail instead.
        return Err(InvertError::Corrupt(
            "the JPEG data ends before its end-of-image marker".into(),
        ));
    }
    let mut decoder_limits = image::Limits::default();
    decoder_limits.max_image_width = Some(limits.max_width);
    decoder_limits.max_image_height = Some(limits.max_height);
    decoder_limits.max_alloc = Some(limits.max_alloc);
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(decoder_limits);
    let picture = reader.decode().map_err(|err| decode_error(err, limits))?;
    Ok((picture, format))
}

/// Encodes a picture in `format`; `size_hint` is the original's size.
pub(super) fn encode(
    mut picture: DynamicImage,
    format: ImageFormat,
    size_hint: usize,
) -> Result<Vec<u8>, InvertError> {
    let mut out = Vec::with_capacity(size_hint);
    let written = match format {
        ImageFormat::Jpeg => {
            // JPEG stores grey or RGB only, in 8 bits.
            if !matches!(
                picture,
                DynamicImage::ImageLuma8(_) | DynamicImage::ImageRgb8(_)
            ) {
                picture = DynamicImage::ImageRgb8(picture.to_rgb8());
            }
            let encoder =
                image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY);
            picture.write_with_encoder(encoder)
        }
        _ => picture.write_with_encoder(image::codecs::png::PngEncoder::new(&mut out)),
    };
    written.map_err(|err| InvertError::Encode(err.to_string()))?;
    Ok(out)
}

/// How large an image the decoder may accept. The defaults fit a task with
/// about 1 GB of memory: the decoded image and its encoded copy must both
/// fit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The widest image accepted, in pixels.
    pub max_width: u32,
    /// The tallest image accepted, in pixels.
    pub max_height: u32,
    /// The most memory the decoder may allocate, in bytes.
    pub max_alloc: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_width: 16_384,
            max_height: 16_384,
            max_alloc: 512 * 1024 * 1024,
        }
    }
}

/// Why an image could not be inverted.
#[derive(Debug)]
pub enum InvertError {
    /// The bytes are not a PNG or JPEG image. Holds their first bytes.
    NotAnImage(Vec<u8>),
    /// The bytes are an image in a format this task does not handle.
    UnsupportedFormat(String),
    /// The image is truncated or corrupt.
    Corrupt(String),
    /// The image is larger than the [`Limits`] allow.
    TooLarge(String),
    /// The inverted image could not be encoded.
    Encode(String),
}

impl fmt::Display for InvertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvertError::NotAnImage(start) => {
                write!(f, "the data is not a PNG or JPEG image (it starts with")?;
                for byte in start {
                    write!(f, " {byte:02x}")?;
                }
                write!(
                    f,
                    "); check that the URL points at the image itself and not at a web page"
                )
            }
            InvertError::UnsupportedFormat(format) => write!(
                f,
                "the image is a {format}, but only PNG and JPEG images can be inverted; \
                 convert it first"
            ),
            InvertError::Corrupt(reason) => write!(
                f,
                "the image is truncated or corrupt ({reason}); check that the download \
                 completed and that the file opens in an image viewer"
            ),
            InvertError::TooLarge(reason) => write!(
                f,
                "the image is too large to decode safely ({reason}); use a smaller image"
            ),
            InvertError::Encode(reason) => {
                write!(f, "the inverted image could not be encoded: {reason}")
            }
        }
    }
}

impl std::error::Error for InvertError {}

/// Whether a JPEG file reaches its end-of-image marker (`FF D9`) after its
/// last scan. Inside a scan every `FF` data byte is followed by `00` or a
/// restart marker, so neither the start-of-scan marker (`FF DA`) nor `FF D9`
/// can appear there by chance: a file cut off inside its last scan has no
/// `FF D9` after the last `FF DA`. A thumbnail earlier in the file, or bytes
/// after the marker, do not change the answer.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    match bytes.windows(2).rposition(|pair| pair == [0xFF, 0xDA]) {
        Some(scan) => bytes[scan..].windows(2).any(|pair| pair == [0xFF, 0xD9]),
        // No scan at all: the decoder reports what is wrong.
        None => true,
    }
}

fn decode_error(err: image::ImageError, limits: &Limits) -> InvertError {
    match err {
        image::ImageError::Limits(limit) => InvertError::TooLarge(format!(
            "{limit}: at most {}x{} pixels and {} MiB of pixel data",
            limits.max_width,
            limits.max_height,
            limits.max_alloc / (1024 * 1024)
        )),
        image::ImageError::Unsupported(what) => InvertError::UnsupportedFormat(what.to_string()),
        // Reading from memory fails only when the data ends early, so every
        // other error means the bytes themselves are wrong.
        other => InvertError::Corrupt(other.to_string().trim().to_owned()),
    }
}
