//! The `portcullis` binary: everything lives in the library; see `portcullis::cli`.

/// mimalloc's per-thread free lists serve the proxy's many small, short-lived allocations
/// (header maps, buffers, futures) in a fraction of glibc malloc's instructions.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    portcullis::cli::main()
}
