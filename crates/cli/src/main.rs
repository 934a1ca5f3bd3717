//! The `boxoffice` binary: parse the command line, hand over to the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    return_large_allocations_to_the_system();
    let cli = boxoffice::Cli::parse();
    match boxoffice::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("boxoffice: error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// glibc raises its mmap threshold after the first large block is freed, so
/// later large blocks (Argon2's 19 MiB per password hash, 6 MB seat maps)
/// come from per-thread arenas and stay in the process for good: a server
/// that registered a few thousand users sat at ~850 MiB. A fixed threshold
/// keeps blocks of 1 MiB and more on their own mappings, returned on free.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn return_large_allocations_to_the_system() {
    const LARGE_BLOCK_BYTES: libc::c_int = 1 << 20;
    // SAFETY: mallopt only adjusts allocator parameters; it is called before
    // any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, LARGE_BLOCK_BYTES);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn return_large_allocations_to_the_system() {}
