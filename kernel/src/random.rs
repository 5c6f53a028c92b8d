//! The kernel's random numbers: `getrandom`, and `AT_RANDOM` for each new
//! program. A ChaCha20 generator keyed at boot from what the boot loader
//! gives in the device tree (`/chosen/rng-seed`, `/chosen/kaslr-seed`) and
//! the counter. After every request the generator is keyed again from its
//! own next output with the counter folded in ("fast key erasure"): what it
//! gave before cannot be recomputed from its state.
//!
//! How strong it is depends on the seed: QEMU and recent Pi firmware pass
//! random bytes in `rng-seed` (unpredictable output); without them, only
//! the counter's value at boot and at each request seeds it, which an
//! attacker who knows the boot timing can guess. There is no hardware
//! entropy source driver yet.

use chacha20::rand_core::{Rng, SeedableRng};
use chacha20::ChaCha20Rng;
use spin::Mutex;

use crate::arch::timer;

static GENERATOR: Mutex<Option<ChaCha20Rng>> = Mutex::new(None);

/// Whether the boot loader gave a seed (the output is only as good as it).
static SEEDED_BY_BOOT_LOADER: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Folds `bytes` into a 32-byte key (each byte added into its slot).
fn fold(key: &mut [u8; 32], bytes: &[u8]) {
    for (i, byte) in bytes.iter().enumerate() {
        key[i % 32] = key[i % 32].rotate_left(3) ^ byte;
    }
}

/// Keys the generator from the boot loader's seeds and the counter.
pub fn init(rng_seed: &[u8], kaslr_seed: Option<u64>) {
    let mut key = [0u8; 32];
    fold(&mut key, rng_seed);
    if let Some(seed) = kaslr_seed {
        fold(&mut key, &seed.to_le_bytes());
    }
    let from_boot_loader = !rng_seed.is_empty() || kaslr_seed.is_some();
    SEEDED_BY_BOOT_LOADER.store(from_boot_loader, core::sync::atomic::Ordering::Relaxed);
    // The counter last, so that the key differs at each boot even with a
    // fixed seed.
    fold(&mut key, &timer::ticks().to_le_bytes());
    *GENERATOR.lock() = Some(ChaCha20Rng::from_seed(key));
    log::info!(
        "random: ChaCha20 keyed from {}",
        if from_boot_loader { "the boot loader's seed and the counter" } else { "the counter only (weak)" }
    );
}

/// Fills `out` with random bytes.
pub fn fill(out: &mut [u8]) {
    let mut generator = GENERATOR.lock();
    let generator = generator.get_or_insert_with(|| ChaCha20Rng::from_seed([0; 32]));
    generator.fill_bytes(out);
    let mut key = [0u8; 32];
    generator.fill_bytes(&mut key);
    fold(&mut key, &timer::ticks().to_le_bytes());
    *generator = ChaCha20Rng::from_seed(key);
}
