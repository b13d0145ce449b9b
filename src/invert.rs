//! The work of a workshop step 3 task: turn an image into its negative.
//!
//! Inverting is the simplest image operation there is: every colour sample
//! `v` becomes `255 - v`. That is the point: the workshop is about
//! distributing work with Mesos, and the work itself should be obvious.
//! [`invert_image`] decodes, inverts ([`invert_pixels`]) and encodes again.
//!
//! - **Colour types.** The pixels are inverted in the colour type the file
//!   was stored in (grey, grey+alpha, RGB, RGBA; 8 or 16 bits per sample),
//!   and written back in the same format, so a grey PNG stays a grey PNG.
//!   Transparency is kept: alpha is not a colour and is left untouched.
//!   16-bit samples are inverted as `65535 - v`, keeping their precision.
//! - **The input is untrusted**, and a task on a shared cluster must not
//!   run out of memory on a decompression bomb: the decoding rules and
//!   their [`Limits`] are in `invert/format.rs`, which a reader may skip.
//!
//! Metadata (EXIF orientation, ICC colour profiles) is not copied to the
//! result; a rotated phone photo therefore comes back unrotated.

mod format;

pub use format::{InvertError, Limits};

use image::{DynamicImage, ImageFormat};

/// Decodes a PNG or JPEG image, inverts its colours and encodes it again in
/// the same format. Anything but a PNG or a JPEG is refused, whatever its
/// name says.
pub fn invert_image(bytes: &[u8], limits: &Limits) -> Result<Inverted, InvertError> {
    let (mut picture, format) = format::decode(bytes, limits)?;
    invert_in_place(&mut picture)?;
    let width = picture.width();
    let height = picture.height();
    let bytes = format::encode(picture, format, bytes.len())?;
    Ok(Inverted {
        bytes,
        format,
        width,
        height,
    })
}

/// Inverts a decoded image in its own colour type.
fn invert_in_place(picture: &mut DynamicImage) -> Result<(), InvertError> {
    // An image buffer is a slice of samples, pixel after pixel. The number
    // is the samples per pixel, and `true` says the last one is alpha.
    match picture {
        DynamicImage::ImageLuma8(buffer) => invert_pixels::<1>(buffer, false),
        DynamicImage::ImageLumaA8(buffer) => invert_pixels::<2>(buffer, true),
        DynamicImage::ImageRgb8(buffer) => invert_pixels::<3>(buffer, false),
        DynamicImage::ImageRgba8(buffer) => invert_pixels::<4>(buffer, true),
        DynamicImage::ImageLuma16(buffer) => invert_samples_16(buffer, 1, false),
        DynamicImage::ImageLumaA16(buffer) => invert_samples_16(buffer, 2, true),
        DynamicImage::ImageRgb16(buffer) => invert_samples_16(buffer, 3, false),
        DynamicImage::ImageRgba16(buffer) => invert_samples_16(buffer, 4, true),
        // PNG and JPEG decoders never produce floating-point images.
        other => {
            return Err(InvertError::UnsupportedFormat(format!(
                "{:?} image",
                other.color()
            )))
        }
    }
    Ok(())
}

/// An inverted image, encoded and ready to upload.
#[derive(Clone, Debug)]
pub struct Inverted {
    /// The encoded image.
    pub bytes: Vec<u8>,
    /// Its format: always the format of the original.
    pub format: ImageFormat,
    /// Its width in pixels.
    pub width: u32,
    /// Its height in pixels.
    pub height: u32,
}

/// The usual file name extension of a format we produce: `"png"` or `"jpg"`.
pub fn extension(format: ImageFormat) -> &'static str {
    match format {
        ImageFormat::Jpeg => "jpg",
        _ => "png",
    }
}

/// Inverts every colour sample in `pixels`, in place: `v` becomes `255 - v`.
///
/// `pixels` holds pixels of `CHANNELS` bytes each, as the decoder stores
/// them: grey (1), grey and alpha (2), RGB (3) or RGBA (4). When `alpha` is
/// true, the last byte of each pixel is its alpha (opacity), which is not a
/// colour and is kept, as are bytes after the last whole pixel. `CHANNELS`
/// is a constant of the call (`invert_pixels::<4>`), so the compiler knows
/// the inner loop's length and unrolls it (`benches/invert.rs`).
///
/// ```
/// use mesos_tutorial::invert::invert_pixels;
///
/// // Two RGBA pixels: opaque black, and half-transparent orange.
/// let mut pixels = [0, 0, 0, 255, /**/ 255, 128, 0, 128];
/// invert_pixels::<4>(&mut pixels, true);
/// // White and half-transparent azure: the alpha bytes are unchanged.
/// assert_eq!(pixels, [255, 255, 255, 255, /**/ 0, 127, 255, 128]);
/// ```
pub fn invert_pixels<const CHANNELS: usize>(pixels: &mut [u8], alpha: bool) {
    const { assert!(CHANNELS > 0, "a pixel has at least one byte") };
    if !alpha {
        // Every byte is a colour sample.
        for sample in pixels {
            *sample = 255 - *sample;
        }
        return;
    }
    for pixel in pixels.as_chunks_mut::<CHANNELS>().0 {
        // All of the pixel but its last byte, the alpha.
        for sample in &mut pixel[..CHANNELS - 1] {
            *sample = 255 - *sample;
        }
    }
}

/// [`invert_pixels`] for 16-bit samples, `v` becoming `65535 - v`, with
/// `channels` samples per pixel; samples after the last whole pixel are
/// kept. Rare images: this loop need not be fast.
fn invert_samples_16(samples: &mut [u16], channels: usize, alpha: bool) {
    let colours = if alpha { channels - 1 } else { channels };
    for pixel in samples.chunks_exact_mut(channels) {
        for sample in &mut pixel[..colours] {
            *sample = 65535 - *sample;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, ImageBuffer, Rgb, RgbImage, Rgba, RgbaImage};
    use std::io::Cursor;

    fn encode(picture: &DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        picture.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    fn decode(bytes: &[u8]) -> DynamicImage {
        image::load_from_memory(bytes).unwrap()
    }

    /// A picture whose pixels all differ, so a mixed-up channel shows.
    fn rgba_sample() -> RgbaImage {
        ImageBuffer::from_fn(7, 5, |x, y| {
            Rgba([
                (x * 30) as u8,
                (y * 50) as u8,
                (x * y * 7) as u8,
                (255 - x * 20) as u8,
            ])
        })
    }

    #[test]
    fn invert_pixels_leaves_alpha_alone() {
        let mut rgba = [0, 100, 255, 7, 10, 20, 30, 40];
        invert_pixels::<4>(&mut rgba, true);
        assert_eq!(rgba, [255, 155, 0, 7, 245, 235, 225, 40]);

        let mut grey_alpha = [0, 9, 200, 10];
        invert_pixels::<2>(&mut grey_alpha, true);
        assert_eq!(grey_alpha, [255, 9, 55, 10]);

        let mut rgb = [0, 1, 254, 255, 128, 127];
        invert_pixels::<3>(&mut rgb, false);
        assert_eq!(rgb, [255, 254, 1, 0, 127, 128]);

        let mut odd = [1, 2, 3, 4, 5, 6];
        invert_pixels::<3>(&mut odd, true);
        assert_eq!(odd, [254, 253, 3, 251, 250, 6]);
    }

    #[test]
    fn every_layout_and_the_tail_follow_the_per_pixel_rule() {
        // Whole pixels, then (when the length is not a multiple of the
        // pixel size) a partial pixel at the end that is left alone.
        for (channels, len) in [(4, 17), (4, 40), (2, 23), (2, 8), (3, 14)] {
            let original: Vec<u8> = (0..len).map(|i| (i * 37 % 256) as u8).collect();
            let mut pixels = original.clone();
            match channels {
                2 => invert_pixels::<2>(&mut pixels, true),
                3 => invert_pixels::<3>(&mut pixels, true),
                _ => invert_pixels::<4>(&mut pixels, true),
            }
            let whole = len / channels * channels;
            for (i, (before, after)) in original.iter().zip(&pixels).enumerate() {
                let is_alpha = i % channels == channels - 1;
                let expected = if i >= whole || is_alpha {
                    *before
                } else {
                    255 - before
                };
                assert_eq!(*after, expected, "byte {i} of {len}, {channels} channels");
            }
        }
    }

    #[test]
    fn rgba_png_is_inverted_exactly_with_alpha_untouched() {
        let original = rgba_sample();
        let bytes = encode(
            &DynamicImage::ImageRgba8(original.clone()),
            ImageFormat::Png,
        );
        let inverted = invert_image(&bytes, &Limits::default()).unwrap();
        assert_eq!(inverted.format, ImageFormat::Png);
        assert_eq!((inverted.width, inverted.height), (7, 5));
        let result = decode(&inverted.bytes).into_rgba8();
        for (before, after) in original.pixels().zip(result.pixels()) {
            let [r, g, b, a] = before.0;
            assert_eq!(after.0, [255 - r, 255 - g, 255 - b, a]);
        }
    }

    #[test]
    fn rgb_and_grey_pngs_keep_their_colour_type() {
        let rgb: RgbImage = ImageBuffer::from_fn(4, 3, |x, y| Rgb([x as u8 * 60, y as u8, 200]));
        let bytes = encode(&DynamicImage::ImageRgb8(rgb.clone()), ImageFormat::Png);
        let inverted = invert_image(&bytes, &Limits::default()).unwrap();
        assert_eq!(inverted.format, ImageFormat::Png);
        assert_eq!((inverted.width, inverted.height), (4, 3));
        let result = decode(&inverted.bytes);
        let DynamicImage::ImageRgb8(result) = result else {
            panic!("expected RGB, got {:?}", result.color());
        };
        for (before, after) in rgb.pixels().zip(result.pixels()) {
            assert_eq!(after.0, before.0.map(|v| 255 - v));
        }

        let grey: GrayImage = ImageBuffer::from_fn(5, 2, |x, y| image::Luma([(x * 50 + y) as u8]));
        let bytes = encode(&DynamicImage::ImageLuma8(grey.clone()), ImageFormat::Png);
        let result = decode(&invert_image(&bytes, &Limits::default()).unwrap().bytes);
        let DynamicImage::ImageLuma8(result) = result else {
            panic!("expected grey, got {:?}", result.color());
        };
        for (before, after) in grey.pixels().zip(result.pixels()) {
            assert_eq!(after.0[0], 255 - before.0[0]);
        }
    }

    #[test]
    fn sixteen_bit_samples_are_inverted_at_full_precision() {
        let deep: ImageBuffer<Rgba<u16>, Vec<u16>> = ImageBuffer::from_fn(3, 2, |x, y| {
            Rgba([x as u16 * 1000, 1, 65535, 300 + y as u16])
        });
        let bytes = encode(&DynamicImage::ImageRgba16(deep.clone()), ImageFormat::Png);
        let result = decode(&invert_image(&bytes, &Limits::default()).unwrap().bytes).into_rgba16();
        for (before, after) in deep.pixels().zip(result.pixels()) {
            let [r, g, b, a] = before.0;
            assert_eq!(after.0, [65535 - r, 65535 - g, 65535 - b, a]);
        }
    }

    #[test]
    fn jpeg_round_trip_is_close_to_the_exact_negative() {
        // Smooth content: JPEG loses little on it.
        let original: RgbImage = ImageBuffer::from_fn(64, 48, |x, y| {
            Rgb([(x * 4) as u8, (y * 5) as u8, ((x + y) * 2) as u8])
        });
        let bytes = encode(
            &DynamicImage::ImageRgb8(original.clone()),
            ImageFormat::Jpeg,
        );
        let inverted = invert_image(&bytes, &Limits::default()).unwrap();
        assert_eq!(inverted.format, ImageFormat::Jpeg);
        assert_eq!(extension(inverted.format), "jpg");
        let result = decode(&inverted.bytes).into_rgb8();
        let mut total_error = 0u64;
        for (before, after) in original.pixels().zip(result.pixels()) {
            for (b, a) in before.0.iter().zip(after.0) {
                total_error += u64::from((255 - b).abs_diff(a));
            }
        }
        let mean_error = total_error as f64 / (64.0 * 48.0 * 3.0);
        assert!(mean_error < 6.0, "mean error {mean_error}");
    }

    #[test]
    fn a_truncated_png_is_reported_as_corrupt() {
        let bytes = encode(&DynamicImage::ImageRgba8(rgba_sample()), ImageFormat::Png);
        let err = invert_image(&bytes[..bytes.len() / 2], &Limits::default()).unwrap_err();
        assert!(matches!(err, InvertError::Corrupt(_)), "{err:?}");
        assert!(err.to_string().contains("truncated or corrupt"), "{err}");
    }

    #[test]
    fn a_truncated_jpeg_is_reported_as_corrupt() {
        let bytes = encode(
            &DynamicImage::ImageRgb8(rgb_noise(64, 48)),
            ImageFormat::Jpeg,
        );
        assert!(invert_image(&bytes, &Limits::default()).is_ok());
        for cut in [bytes.len() - 2, bytes.len() * 3 / 4, bytes.len() / 2] {
            let err = invert_image(&bytes[..cut], &Limits::default()).unwrap_err();
            assert!(
                matches!(err, InvertError::Corrupt(_)),
                "cut at {cut}: {err}"
            );
            assert!(err.to_string().contains("end-of-image"), "{err}");
        }
        // Bytes after the end-of-image marker are tolerated, as viewers do.
        let mut padded = bytes.clone();
        padded.extend_from_slice(&[0, 0, 0, 0]);
        assert!(invert_image(&padded, &Limits::default()).is_ok());
    }

    /// A picture whose pixels vary, so that its JPEG has a real scan.
    fn rgb_noise(width: u32, height: u32) -> RgbImage {
        RgbImage::from_fn(width, height, |x, y| {
            let v = (x * 31 + y * 17) as u8;
            Rgb([v, v.wrapping_mul(3), v ^ 0x5a])
        })
    }

    #[test]
    fn a_web_page_is_not_an_image() {
        let err = invert_image(b"<!DOCTYPE html><html>", &Limits::default()).unwrap_err();
        assert!(matches!(err, InvertError::NotAnImage(_)), "{err:?}");
        assert!(err.to_string().contains("3c 21 44 4f"), "{err}");
        let err = invert_image(b"", &Limits::default()).unwrap_err();
        assert!(matches!(err, InvertError::NotAnImage(_)), "{err:?}");
    }

    #[test]
    fn other_image_formats_are_named_in_the_error() {
        let err = invert_image(b"GIF89a\x01\x00\x01\x00", &Limits::default()).unwrap_err();
        assert!(matches!(err, InvertError::UnsupportedFormat(_)), "{err:?}");
        assert!(err.to_string().contains("Gif"), "{err}");
    }

    /// The CRC-32 that closes every PNG chunk.
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &byte in bytes {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    /// A valid small PNG whose header claims `width`×`height` pixels.
    fn png_claiming(width: u32, height: u32) -> Vec<u8> {
        let mut bytes = encode(&DynamicImage::ImageRgba8(rgba_sample()), ImageFormat::Png);
        // Signature (8), IHDR length (4), "IHDR" (4), then width and height.
        assert_eq!(&bytes[12..16], b"IHDR");
        bytes[16..20].copy_from_slice(&width.to_be_bytes());
        bytes[20..24].copy_from_slice(&height.to_be_bytes());
        let crc = crc32(&bytes[12..29]);
        bytes[29..33].copy_from_slice(&crc.to_be_bytes());
        bytes
    }

    #[test]
    fn a_decompression_bomb_is_refused_from_its_header() {
        let bomb = png_claiming(100_000, 100_000);
        assert!(bomb.len() < 1000);
        // 100000×100000 RGBA would be 40 GB: the test passing at all shows
        // that nothing of that size was allocated.
        let err = invert_image(&bomb, &Limits::default()).unwrap_err();
        assert!(matches!(err, InvertError::TooLarge(_)), "{err:?}");
        assert!(err.to_string().contains("smaller image"), "{err}");
    }

    #[test]
    fn the_memory_limit_applies_within_the_dimension_limits() {
        // 16000×16000 RGBA is 1 GB: within the default dimensions, but
        // more than 512 MiB.
        let err = invert_image(&png_claiming(16_000, 16_000), &Limits::default()).unwrap_err();
        assert!(matches!(err, InvertError::TooLarge(_)), "{err:?}");
        let tight = Limits {
            max_alloc: 100,
            ..Limits::default()
        };
        let bytes = encode(&DynamicImage::ImageRgba8(rgba_sample()), ImageFormat::Png);
        assert!(matches!(
            invert_image(&bytes, &tight),
            Err(InvertError::TooLarge(_))
        ));
    }
}
