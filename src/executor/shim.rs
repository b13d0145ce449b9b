//! TODO(merge): delete this file. Temporary stand-ins for `crate::task_data`
//! and `crate::invert`, which are written in other worktrees at the same
//! time. They have the agreed signatures so that `work.rs` compiles and its
//! tests run; at merge, `work.rs` switches its one `use` line to
//! `use crate::{invert, task_data};` and this file and its `mod` line go.

/// TODO(merge): replace with crate::task_data
pub mod task_data {
    use crate::proto::task_data::TaskData;
    use std::fmt;

    /// The payload format version.
    pub const VERSION: u32 = 1;

    /// A payload that could not be read.
    #[derive(Debug)]
    pub struct TaskDataError(String);

    impl fmt::Display for TaskDataError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(&self.0)
        }
    }

    /// Empty bytes are a no-op task of 0 ms; otherwise JSON of `TaskData`.
    pub fn decode(bytes: &[u8]) -> Result<TaskData, TaskDataError> {
        if bytes.is_empty() {
            let mut data = TaskData::new();
            data.version = VERSION;
            return Ok(data);
        }
        let text = std::str::from_utf8(bytes).map_err(|err| TaskDataError(err.to_string()))?;
        let data: TaskData = crate::json::parse(text).map_err(TaskDataError)?;
        if data.version != VERSION {
            return Err(TaskDataError(format!(
                "version {} is not supported (this executor reads version {VERSION})",
                data.version
            )));
        }
        Ok(data)
    }

    /// Whether the task inverts an image (step 3) rather than doing nothing.
    pub fn is_image(data: &TaskData) -> bool {
        !data.image_url.is_empty()
    }
}

/// TODO(merge): replace with crate::invert
pub mod invert {
    use image::ImageFormat;
    use std::fmt;
    use std::io::Cursor;

    /// Bounds on what an image may cost to decode.
    pub struct Limits {
        /// Widest image accepted, in pixels.
        pub max_width: u32,
        /// Tallest image accepted, in pixels.
        pub max_height: u32,
        /// Most memory the decoder may allocate, in bytes.
        pub max_alloc: u64,
    }

    impl Default for Limits {
        fn default() -> Limits {
            Limits {
                max_width: 8192,
                max_height: 8192,
                max_alloc: 512 * 1024 * 1024,
            }
        }
    }

    /// An inverted image, encoded in the format of the original.
    pub struct Inverted {
        /// The encoded image.
        pub bytes: Vec<u8>,
        /// Its format.
        pub format: ImageFormat,
        /// Width in pixels.
        pub width: u32,
        /// Height in pixels.
        pub height: u32,
    }

    /// An image that could not be inverted.
    #[derive(Debug)]
    pub struct InvertError(String);

    impl fmt::Display for InvertError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(&self.0)
        }
    }

    /// Decodes, inverts and re-encodes an image.
    pub fn invert_image(bytes: &[u8], limits: &Limits) -> Result<Inverted, InvertError> {
        let format = image::guess_format(bytes).map_err(|err| InvertError(err.to_string()))?;
        let mut reader = image::ImageReader::with_format(Cursor::new(bytes), format);
        let mut bounds = image::Limits::default();
        bounds.max_image_width = Some(limits.max_width);
        bounds.max_image_height = Some(limits.max_height);
        bounds.max_alloc = Some(limits.max_alloc);
        reader.limits(bounds);
        let mut picture = reader
            .decode()
            .map_err(|err| InvertError(err.to_string()))?;
        picture.invert();
        let mut encoded = Cursor::new(Vec::new());
        picture
            .write_to(&mut encoded, format)
            .map_err(|err| InvertError(err.to_string()))?;
        Ok(Inverted {
            bytes: encoded.into_inner(),
            format,
            width: picture.width(),
            height: picture.height(),
        })
    }

    /// The usual file extension of a format.
    pub fn extension(format: ImageFormat) -> &'static str {
        match format {
            ImageFormat::Png => "png",
            ImageFormat::Jpeg => "jpg",
            _ => "bin",
        }
    }
}
