//! The shipped binary's code layout: in optimised builds for x86_64 Linux linked by rust-lld
//! (Rust's default there since 1.90), the functions the service runs on its ordinary requests,
//! at start and while idle are laid out first, in the order `link/poam.order` gives
//! (`bench/symbol-order.sh` writes it from callgrind). A running service then touches a few
//! contiguous pages of its text instead of pages all over it, which the kernel's fault-around
//! would map 64 KiB at a time: idle RSS, and fewer instruction-cache and TLB misses. Names the
//! build no longer has are skipped. `POAM_SYMBOL_ORDER=off` leaves the layout to the linker.

use std::process::Command;

const ORDER: &str = "link/poam.order";

/// The minor version of the compiler, `1.<minor>.<patch>`.
fn rustc_minor() -> Option<u32> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(rustc).arg("--version").output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    text.split_whitespace()
        .nth(1)?
        .split('.')
        .nth(1)?
        .parse()
        .ok()
}

fn main() {
    println!("cargo:rerun-if-changed={ORDER}");
    println!("cargo:rerun-if-env-changed=POAM_SYMBOL_ORDER");
    let optimised = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    let target = std::env::var("TARGET").unwrap_or_default();
    // A linker chosen in the flags (`-C linker=`, `-fuse-ld=`) may not be lld.
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let default_linker = !flags.contains("linker") && !flags.contains("fuse-ld");
    let lld = target == "x86_64-unknown-linux-gnu"
        && default_linker
        && rustc_minor().is_some_and(|m| m >= 90);
    let wanted = !matches!(std::env::var("POAM_SYMBOL_ORDER").as_deref(), Ok("off"));
    if optimised && lld && wanted && std::path::Path::new(ORDER).exists() {
        let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
        println!("cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={manifest}/{ORDER}");
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}
