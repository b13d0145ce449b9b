//! How fast a task inverts pixels, compared with copying them.
//!
//! Inverting a colour (`v` becomes `255 - v`) is one instruction per byte,
//! so an image task should spend its time decoding and encoding, never
//! inverting. `invert_pixels` (in `src/invert.rs`) is the plain loop. Without
//! alpha every byte is treated alike and the compiler vectorises it, so
//! inverting a buffer in place runs at about the speed of copying it. With
//! alpha kept (RGBA) the inner loop has a length known when the code
//! compiles (`CHANNELS - 1`), so the compiler unrolls it; it is slower than
//! the RGB8 loop, and near its target on this machine (README,
//! Performance).
//!
//! The benchmark inverts a 4096×4096 image in place, as RGBA8 (alpha kept,
//! `channels` 4) and as RGB8 (`channels` 3, no alpha), and compares each
//! with memcpy of a buffer of the same size (`copy_from_slice` into a
//! preallocated buffer). Target: at least 0.7 of memcpy. Each figure is the
//! best of several runs; GB = 10^9 bytes of the image.

mod report;

use mesos_tutorial::invert::invert_pixels;
use report::{figure, per_second, time, Table, Target};
use std::hint::black_box;
use std::time::Duration;

fn main() {
    let quick = report::quick_run();
    let (side, runs) = if quick { (256, 2) } else { (4096, 15) };

    let mut table = Table::new(&format!("Pixel inversion, {side}x{side} pixels, in place"));
    let layouts: [(&str, usize, bool, Invert); 2] = [
        (
            "invert_pixels RGBA8 (alpha kept)",
            4,
            true,
            invert_pixels::<4>,
        ),
        ("invert_pixels RGB8", 3, false, invert_pixels::<3>),
    ];
    for (name, channels, alpha, invert_layout) in layouts {
        let len = side * side * channels;
        let (invert, memcpy) = measure(invert_layout, len, channels, alpha, runs);
        table.row(
            name,
            figure(gigabytes_per_second(len, invert), "GB/s"),
            Some(figure(gigabytes_per_second(len, memcpy), "GB/s")),
            Target::Ratio(0.7),
        );
    }
    table.note(format!(
        "best of {runs} runs each; limit = memcpy of a buffer of the same size; \
         RGBA8 is {} MB, RGB8 {} MB",
        side * side * 4 / 1_000_000,
        side * side * 3 / 1_000_000
    ));
    if quick {
        table.note("quick run (no --bench): figures are not meaningful");
    }
    table.print();
}

/// `invert_pixels` for one number of channels.
type Invert = fn(&mut [u8], bool);

/// The best times of inverting and of copying a `len`-byte buffer.
fn measure(
    invert_layout: Invert,
    len: usize,
    channels: usize,
    alpha: bool,
    runs: usize,
) -> (Duration, Duration) {
    // Every page written before timing, so no run pays for page faults.
    let mut pixels: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
    let original = pixels.clone();
    let mut copy = vec![1u8; len];

    check(invert_layout, &mut pixels.clone(), channels, alpha);
    // Runs alternate, so that both see the same state of the machine.
    let (mut invert, mut memcpy) = (Duration::MAX, Duration::MAX);
    for _ in 0..runs {
        invert = invert.min(time(|| invert_layout(black_box(&mut pixels), alpha)));
        memcpy = memcpy.min(time(|| {
            copy.copy_from_slice(black_box(&original));
            black_box(&mut copy);
        }));
    }
    (invert, memcpy)
}

/// The benchmark measures the real thing: every colour sample is inverted,
/// every alpha kept.
fn check(invert_layout: Invert, pixels: &mut [u8], channels: usize, alpha: bool) {
    let before = pixels.to_vec();
    invert_layout(pixels, alpha);
    for (index, (old, new)) in before.iter().zip(pixels.iter()).enumerate() {
        let is_alpha = alpha && index % channels == channels - 1;
        let expected = if is_alpha { *old } else { 255 - old };
        assert_eq!(*new, expected, "byte {index}, {channels} channels");
    }
}

fn gigabytes_per_second(bytes: usize, elapsed: Duration) -> f64 {
    per_second(bytes as f64, elapsed) / 1e9
}
