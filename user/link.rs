//! Build script shared by the user program crates (`build = "../link.rs"`):
//! links each binary with `user/link.ld` into a static ELF at 0x400000.

use std::env;
use std::path::PathBuf;

fn main() {
    let script = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("..")
        .join("link.ld");
    println!("cargo:rustc-link-arg-bins=-T{}", script.display());
    println!("cargo:rustc-link-arg-bins=--build-id=none");
    println!("cargo:rustc-link-arg-bins=-zmax-page-size=4096");
    println!("cargo:rerun-if-changed={}", script.display());
}
