//! Links the kernel with its board's linker script, and hands the linker
//! the constants it shares with Rust (the linear-map offset).

use std::env;
use std::fs;
use std::path::PathBuf;

#[path = "src/memory/layout.rs"]
mod layout;

fn main() {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap()).join("..").join("linker");
    let board = match (env::var_os("CARGO_FEATURE_BOARD_QEMU_VIRT"), env::var_os("CARGO_FEATURE_BOARD_RPI4")) {
        (Some(_), None) => "qemu-virt",
        (None, Some(_)) => "rpi4",
        _ => return, // the crate itself reports the missing or doubled board feature
    };
    let generated = PathBuf::from(env::var("OUT_DIR").unwrap());
    let linear_map = format!(
        "/* Written by kernel/build.rs from src/memory/layout.rs. */\nKERNEL_VIRT_OFFSET = {:#x};\n",
        layout::LINEAR_MAP_OFFSET
    );
    fs::write(generated.join("linear-map.ld"), linear_map).expect("cannot write linear-map.ld");
    println!("cargo:rustc-link-arg-bins=-L{}", generated.display());
    println!("cargo:rustc-link-arg-bins=-L{}", root.display());
    println!("cargo:rustc-link-arg-bins=-T{}", root.join(format!("{board}.ld")).display());
    println!("cargo:rerun-if-changed={}", root.display());
    for script in ["kernel.ld", "qemu-virt.ld", "rpi4.ld"] {
        println!("cargo:rerun-if-changed={}", root.join(script).display());
    }
    println!("cargo:rerun-if-changed=src/memory/layout.rs");
    println!("cargo:rerun-if-changed=src/arch/aarch64/boot.s");
    println!("cargo:rerun-if-changed=src/arch/aarch64/exception.s");
}
