//! The `agentauth` binary: everything lives in the library; this only hands over to the CLI.

/// mimalloc: the token endpoint allocates many small, short-lived buffers, and glibc's malloc
/// showed up at about a tenth of the server's CPU in profiles.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    agentauth::cli::run()
}
