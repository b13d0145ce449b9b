//! The images that workshop step 3 inverts when you give it none.
//!
//! *A reader may skip this file: it draws pictures, nothing about Mesos.*
//!
//! Step 3 launches one task per image URL. So that `cargo run --bin
//! scheduler` works on a laptop without network access, the scheduler
//! writes a handful of pictures drawn by the code below into a directory,
//! serves them from its own file server, and hands their URLs to the tasks.
//!
//! The pictures cover what the inverting code must handle: PNG and JPEG, RGB,
//! RGB with an alpha channel (its transparency must survive the inversion),
//! and grey. They are drawn with integer arithmetic only, so the files have
//! the same bytes on every run and every machine.

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::{DynamicImage, GrayImage, Luma, Rgb, RgbImage, Rgba, RgbaImage};
use std::io;
use std::path::{Path, PathBuf};

/// JPEG quality of the demo JPEGs: good enough to look clean.
const JPEG_QUALITY: u8 = 90;

/// Writes the demo images into `dir` (created if missing) and returns their
/// paths, always in the same order.
pub fn write_demo_images(dir: &Path) -> io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let pictures: [(&str, DynamicImage); 5] = [
        ("gradient.png", DynamicImage::ImageRgb8(gradient(320, 240))),
        (
            "checkerboard.jpg",
            DynamicImage::ImageRgb8(checkerboard(320, 240)),
        ),
        ("circles.png", DynamicImage::ImageRgba8(circles(256))),
        ("stripes.jpg", DynamicImage::ImageRgb8(stripes(320, 240))),
        (
            "grey-sphere.png",
            DynamicImage::ImageLuma8(grey_sphere(256)),
        ),
    ];
    let mut paths = Vec::with_capacity(pictures.len() + 1);
    for (name, picture) in pictures {
        let path = dir.join(name);
        save(&picture, &path)?;
        paths.push(path);
    }
    // The last is a sunset, drawn as tests and benches draw theirs.
    let sunset = dir.join("sunset.jpg");
    write_demo_image(&sunset, 400, 300, 1)?;
    paths.push(sunset);
    Ok(paths)
}

/// Writes one `width`×`height` picture to `path`, as PNG or JPEG according
/// to the extension (`.png`, `.jpg` or `.jpeg`). Different seeds give
/// different pictures; the same seed gives the same bytes.
pub fn write_demo_image(path: &Path, width: u32, height: u32, seed: u32) -> io::Result<()> {
    if width == 0 || height == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("a demo image needs a size of at least 1x1, not {width}x{height}"),
        ));
    }
    save(&DynamicImage::ImageRgb8(sunset(width, height, seed)), path)
}

/// Encodes `picture` in the format `path`'s extension names, then writes it.
fn save(picture: &DynamicImage, path: &Path) -> io::Result<()> {
    let extension = path
        .extension()
        .and_then(|ext| ext.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let mut bytes = Vec::new();
    let encoded = match extension.as_str() {
        "png" => picture.write_with_encoder(PngEncoder::new(&mut bytes)),
        "jpg" | "jpeg" => {
            picture.write_with_encoder(JpegEncoder::new_with_quality(&mut bytes, JPEG_QUALITY))
        }
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "cannot tell the image format of {}: name it .png, .jpg or .jpeg",
                    path.display()
                ),
            ))
        }
    };
    encoded.map_err(io::Error::other)?;
    std::fs::write(path, bytes)
}

/// Scales `value` in `0..=max` to `0..=255`.
fn scale(value: u32, max: u32) -> u8 {
    (u64::from(value) * 255 / u64::from(max.max(1))) as u8
}

/// Red grows to the right, green downwards, blue on the diagonal.
fn gradient(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        let red = scale(x, width - 1);
        let green = scale(y, height - 1);
        Rgb([
            red,
            green,
            255 - ((u16::from(red) + u16::from(green)) / 2) as u8,
        ])
    })
}

/// Orange and blue squares, 40 pixels wide, slightly shaded.
fn checkerboard(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        let shade = scale(x + y, width + height) / 4;
        if (x / 40 + y / 40) % 2 == 0 {
            Rgb([240 - shade, 140, 30 + shade])
        } else {
            Rgb([20 + shade, 50, 160 - shade])
        }
    })
}

/// Coloured rings on a transparent background: alpha falls from opaque in
/// the centre to fully transparent at the edge of the disc.
fn circles(size: u32) -> RgbaImage {
    let centre = i64::from(size / 2);
    let radius_squared = centre * centre;
    RgbaImage::from_fn(size, size, |x, y| {
        let (dx, dy) = (i64::from(x) - centre, i64::from(y) - centre);
        let distance_squared = dx * dx + dy * dy;
        if distance_squared >= radius_squared {
            return Rgba([0, 0, 0, 0]);
        }
        let ring = (integer_sqrt(distance_squared as u64) / 16) % 3;
        let alpha = (255 - distance_squared * 255 / radius_squared) as u8;
        match ring {
            0 => Rgba([230, 40, 60, alpha]),
            1 => Rgba([250, 210, 40, alpha]),
            _ => Rgba([40, 160, 90, alpha]),
        }
    })
}

/// Diagonal stripes in six colours.
fn stripes(width: u32, height: u32) -> RgbImage {
    const COLOURS: [[u8; 3]; 6] = [
        [228, 3, 3],
        [255, 140, 0],
        [255, 237, 0],
        [0, 128, 38],
        [0, 77, 255],
        [117, 7, 135],
    ];
    RgbImage::from_fn(width, height, |x, y| {
        Rgb(COLOURS[((x + y) / 24 % 6) as usize])
    })
}

/// A lit sphere in shades of grey.
fn grey_sphere(size: u32) -> GrayImage {
    let centre = i64::from(size / 2);
    let radius = centre - 8;
    GrayImage::from_fn(size, size, |x, y| {
        let (dx, dy) = (i64::from(x) - centre, i64::from(y) - centre);
        let distance_squared = dx * dx + dy * dy;
        if distance_squared > radius * radius {
            return Luma([30]);
        }
        // The height of the sphere's surface above this pixel, lit from the
        // upper left: brighter where the surface faces the light.
        let depth = integer_sqrt((radius * radius - distance_squared) as u64) as i64;
        let light = (depth * 2 - dx - dy) * 255 / (radius * 3);
        Luma([light.clamp(40, 255) as u8])
    })
}

/// A sky that darkens upwards, a sun, and a textured ground: a picture
/// with detail everywhere, so JPEG sizes are realistic. `seed` moves the sun
/// and changes the texture.
fn sunset(width: u32, height: u32, seed: u32) -> RgbImage {
    let horizon = height * 2 / 3;
    let sun_x = i64::from(width / 4 + seed.wrapping_mul(2_654_435_761) % (width / 2 + 1));
    let sun_y = i64::from(horizon) - i64::from(height / 8);
    let sun_radius = i64::from(width.min(height) / 8 + 1);
    RgbImage::from_fn(width, height, |x, y| {
        let grain = (noise(x, y, seed) % 24) as u8;
        if y >= horizon {
            let depth = scale(y - horizon, height - horizon);
            return Rgb([60 + depth / 4 + grain, 40 + depth / 3 + grain, 30 + grain]);
        }
        let (dx, dy) = (i64::from(x) - sun_x, i64::from(y) - sun_y);
        if dx * dx + dy * dy < sun_radius * sun_radius {
            return Rgb([255, 230 - grain, 120]);
        }
        let glow = scale(y, horizon);
        Rgb([
            40 + glow / 2 + grain / 4,
            30 + glow / 3,
            120 - glow / 3 + grain / 4,
        ])
    })
}

/// A cheap integer hash of a pixel position: the same texture on every run.
fn noise(x: u32, y: u32, seed: u32) -> u32 {
    let mut h = x.wrapping_mul(0x8da6_b343) ^ y.wrapping_mul(0xd816_3841) ^ seed;
    h ^= h >> 13;
    h = h.wrapping_mul(0x5bd1_e995);
    h ^ (h >> 15)
}

fn integer_sqrt(value: u64) -> u64 {
    let mut root = (value as f64).sqrt() as u64;
    // Correct the float estimate, which can be one off for large values.
    while root * root > value {
        root -= 1;
    }
    while (root + 1) * (root + 1) <= value {
        root += 1;
    }
    root
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_dir::TestDir;

    #[test]
    fn demo_images_are_valid_deterministic_and_varied() {
        let first = TestDir::new("demo-images-first");
        let second = TestDir::new("demo-images-second");
        // A directory that does not exist yet is created.
        let paths = write_demo_images(&first.0.join("nested")).unwrap();
        let again = write_demo_images(&second.0).unwrap();
        assert_eq!(paths.len(), 6);

        let mut total = 0;
        let mut colour_types = Vec::new();
        for (path, other) in paths.iter().zip(&again) {
            assert_eq!(path.file_name(), other.file_name());
            let bytes = std::fs::read(path).unwrap();
            assert_eq!(bytes, std::fs::read(other).unwrap(), "{}", path.display());
            total += bytes.len();
            let picture = image::load_from_memory(&bytes).unwrap();
            let format = image::guess_format(&bytes).unwrap();
            let extension = path.extension().unwrap().to_str().unwrap();
            assert_eq!(crate::invert::extension(format), extension);
            colour_types.push(picture.color());
        }
        assert!(colour_types.contains(&image::ColorType::Rgba8));
        assert!(colour_types.contains(&image::ColorType::L8));
        assert!(colour_types.contains(&image::ColorType::Rgb8));
        assert!((20_000..1_000_000).contains(&total), "{total} bytes in all");
    }

    #[test]
    fn the_alpha_image_has_both_opaque_and_transparent_pixels() {
        let picture = circles(64);
        let alphas: Vec<u8> = picture.pixels().map(|p| p.0[3]).collect();
        assert!(alphas.contains(&0));
        assert!(alphas.iter().any(|&a| a > 200));
    }

    #[test]
    fn one_image_of_a_given_size_and_seed() {
        let dir = TestDir::new("demo-images-one");
        let (a, b, c) = (
            dir.0.join("a.jpg"),
            dir.0.join("b.jpg"),
            dir.0.join("c.png"),
        );
        write_demo_image(&a, 200, 100, 7).unwrap();
        write_demo_image(&b, 200, 100, 8).unwrap();
        write_demo_image(&c, 31, 17, 7).unwrap();
        let bytes = std::fs::read(&a).unwrap();
        assert_ne!(
            bytes,
            std::fs::read(&b).unwrap(),
            "seeds give different pictures"
        );
        let picture = image::load_from_memory(&bytes).unwrap();
        assert_eq!((picture.width(), picture.height()), (200, 100));
        let bytes = std::fs::read(&c).unwrap();
        assert_eq!(
            image::guess_format(&bytes).unwrap(),
            image::ImageFormat::Png
        );

        let err = write_demo_image(&dir.0.join("d.gif"), 10, 10, 1).unwrap_err();
        assert!(err.to_string().contains(".png"), "{err}");
        assert!(write_demo_image(&dir.0.join("e.png"), 0, 10, 1).is_err());
    }

    #[test]
    fn integer_sqrt_is_exact() {
        for value in [
            0,
            1,
            2,
            3,
            4,
            15,
            16,
            17,
            1 << 40,
            (1 << 52) + 1,
            u64::from(u32::MAX),
        ] {
            let root = integer_sqrt(value);
            assert!(
                root * root <= value && (root + 1) * (root + 1) > value,
                "{value}"
            );
        }
    }
}
