//! Generates Rust types from the `.proto` files at build time.
//!
//! rust-protobuf's pure-Rust parser reads the files, so no `protoc` binary is
//! needed on the machine. The output lands in `$OUT_DIR/protos/` and is
//! included by `src/proto.rs`.

fn main() {
    protobuf_codegen::Codegen::new()
        .pure()
        .include("src/proto")
        .include("src")
        .inputs([
            "src/proto/mesos.proto",
            "src/proto/scheduler.proto",
            "src/proto/executor.proto",
            "src/proto/master.proto",
            "src/task_data.proto",
        ])
        .cargo_out_dir("protos")
        .run_from_script();
}
