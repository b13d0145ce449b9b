//! The executor binary. The Mesos agent starts it (after fetching it from
//! the file server) with `MESOS_*` environment variables; see
//! `mesos_tutorial::executor`.

fn main() {
    // Info by default; RUST_LOG (for example `RUST_LOG=debug`) overrides.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    if let Err(err) = mesos_tutorial::executor::run_from_env() {
        eprintln!("executor: {err}");
        std::process::exit(1);
    }
}
