//! The shipped binary's code layout: in optimised builds for x86_64 Linux (linked by rust-lld,
//! Rust's default there since 1.90), the functions the service runs at start, while idle and on
//! its ordinary requests are laid out first, in the order `link/poam.order` gives
//! (`bench/symbol-order.sh` writes it from callgrind). A running service then touches a few
//! contiguous pages of its text instead of pages all over it, which the kernel's fault-around
//! would map 64 KiB at a time: idle RSS. Names the build no longer has are skipped.
//! `POAM_SYMBOL_ORDER=off` leaves the layout to the linker (for a linker other than lld).

fn main() {
    const ORDER: &str = "link/poam.order";
    println!("cargo:rerun-if-changed={ORDER}");
    println!("cargo:rerun-if-env-changed=POAM_SYMBOL_ORDER");
    let optimised = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    let lld_by_default = std::env::var("TARGET").is_ok_and(|t| t == "x86_64-unknown-linux-gnu");
    let wanted = std::env::var("POAM_SYMBOL_ORDER").map_or(true, |v| v != "off");
    if optimised && lld_by_default && wanted && std::path::Path::new(ORDER).exists() {
        let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
        println!("cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={manifest}/{ORDER}");
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}
