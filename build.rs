//! Generates Rust types from the `.proto` files at build time.
//!
//! rust-protobuf's pure-Rust parser reads the files, so no `protoc` binary is
//! needed on the machine. The output lands in `$OUT_DIR/protos/` and is
//! included by `src/proto.rs`.

/// The `.proto` files the crate's types come from.
const PROTOS: [&str; 5] = [
    "src/proto/mesos.proto",
    "src/proto/scheduler.proto",
    "src/proto/executor.proto",
    "src/proto/master.proto",
    "src/task_data.proto",
];

fn main() {
    // Without these lines Cargo runs this script again, and rebuilds the
    // crate, whenever any file in the project changes: the images and
    // folders that the workshop's runs write included.
    println!("cargo:rerun-if-changed=build.rs");
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    protobuf_codegen::Codegen::new()
        .pure()
        .include("src/proto")
        .include("src")
        .inputs(PROTOS)
        .cargo_out_dir("protos")
        .run_from_script();
}
