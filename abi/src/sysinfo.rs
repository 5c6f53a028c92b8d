//! What `sysinfo` and `/proc/loadavg` report: Linux's load averages (the
//! exponentially damped counts of runnable tasks, in 11-bit fixed point,
//! sampled every [`LOAD_FREQ_MS`]), their text form, and `struct sysinfo`
//! with Linux's choice of memory unit.

/// Bits of fraction in a load average (Linux's `FSHIFT`).
pub const FSHIFT: u32 = 11;
/// 1.0 in load-average fixed point (`FIXED_1`).
pub const FIXED_1: u64 = 1 << FSHIFT;
/// The decay per sample of the 1, 5 and 15-minute averages:
/// `FIXED_1 / exp(5 s / 1 min)` and so on (`EXP_1`, `EXP_5`, `EXP_15`).
pub const EXP: [u64; 3] = [1884, 2014, 2037];
/// How often the count of runnable tasks is sampled: Linux's `LOAD_FREQ`,
/// five seconds and one tick (10 ms at `USER_HZ`).
pub const LOAD_FREQ_MS: u64 = 5010;
/// `sysinfo`'s loads are in 16-bit fixed point (`SI_LOAD_SHIFT`).
pub const SI_LOAD_SHIFT: u32 = 16;
/// Clock ticks per second in what user space reads (`USER_HZ`).
pub const USER_HZ: u64 = 100;

/// `load` after one sample of `active` runnable tasks (fixed point) with
/// decay `exp` (Linux's `calc_load`, rounding up while the load rises).
const fn calc_load(load: u64, exp: u64, active: u64) -> u64 {
    let mut new = load * exp + active * (FIXED_1 - exp);
    if active >= load {
        new += FIXED_1 - 1;
    }
    new / FIXED_1
}

/// `x` to the power `n`, both in fixed point with `FSHIFT` fraction bits
/// (Linux's `fixed_power_int`).
const fn fixed_power(mut x: u64, mut n: u64) -> u64 {
    let half = 1 << (FSHIFT - 1);
    let mut result = FIXED_1;
    while n != 0 {
        if n & 1 != 0 {
            result = (result * x + half) >> FSHIFT;
        }
        n >>= 1;
        if n != 0 {
            x = (x * x + half) >> FSHIFT;
        }
    }
    result
}

/// The 1, 5 and 15-minute load averages, in fixed point (`avenrun`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadAverages(pub [u64; 3]);

impl LoadAverages {
    /// Takes `samples` samples during which `active` tasks were runnable
    /// throughout (Linux's `calc_load_n`: a tickless CPU catches up the
    /// samples it slept through at once).
    pub fn sample(&mut self, active: u64, samples: u64) {
        if samples == 0 {
            return;
        }
        let active = active.saturating_mul(FIXED_1);
        for (load, exp) in self.0.iter_mut().zip(EXP) {
            *load = calc_load(*load, fixed_power(exp, samples), active);
        }
    }

    /// The averages as `sysinfo` gives them: 16-bit fixed point.
    pub fn si_loads(&self) -> [u64; 3] {
        self.0.map(|load| load << (SI_LOAD_SHIFT - FSHIFT))
    }

    /// The three averages as `/proc/loadavg` prints them: "0.42 0.10 0.03",
    /// rounded to hundredths (Linux adds `FIXED_1 / 200` before it cuts).
    pub fn text(&self) -> alloc::string::String {
        let parts = self.0.map(|load| {
            let load = load + FIXED_1 / 200;
            let frac = ((load & (FIXED_1 - 1)) * 100) >> FSHIFT;
            alloc::format!("{}.{:02}", load >> FSHIFT, frac)
        });
        parts.join(" ")
    }
}

/// Counter ticks at `frequency` Hz as clock ticks (`USER_HZ`).
pub fn clock_ticks(ticks: u64, frequency: u64) -> u64 {
    (u128::from(ticks) * u128::from(USER_HZ) / u128::from(frequency.max(1))) as u64
}

/// `struct sysinfo` of a 64-bit Linux (112 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sysinfo {
    /// Seconds since boot, a started second counted whole.
    pub uptime: u64,
    /// The load averages in 16-bit fixed point.
    pub loads: [u64; 3],
    /// Usable RAM, in `mem_unit`s.
    pub totalram: u64,
    /// RAM nothing uses.
    pub freeram: u64,
    /// Shared memory (tmpfs and shared anonymous pages).
    pub sharedram: u64,
    /// Block device buffers.
    pub bufferram: u64,
    /// Swap space (none here).
    pub totalswap: u64,
    /// Swap space free.
    pub freeswap: u64,
    /// Threads in the system.
    pub procs: u16,
    /// High memory (none on a 64-bit kernel).
    pub totalhigh: u64,
    /// High memory free.
    pub freehigh: u64,
    /// The size of the unit the memory fields count.
    pub mem_unit: u32,
}

/// The size of `struct sysinfo`.
pub const SYSINFO_SIZE: usize = 112;

impl Sysinfo {
    /// The memory fields counted in units of `unit` bytes (a page) turned
    /// into bytes with `mem_unit` 1, when RAM plus swap in bytes fits in
    /// 64 bits, as Linux's `do_sysinfo` does; kept in `unit`s otherwise.
    pub fn in_bytes(mut self) -> Self {
        let Some(total) = self.totalram.checked_add(self.totalswap) else { return self };
        let shift = self.mem_unit.trailing_zeros();
        if !self.mem_unit.is_power_of_two() || total.leading_zeros() < shift {
            return self;
        }
        for field in [
            &mut self.totalram,
            &mut self.freeram,
            &mut self.sharedram,
            &mut self.bufferram,
            &mut self.totalswap,
            &mut self.freeswap,
            &mut self.totalhigh,
            &mut self.freehigh,
        ] {
            *field <<= shift;
        }
        self.mem_unit = 1;
        self
    }

    /// The structure as the call copies it out.
    pub fn to_bytes(&self) -> [u8; SYSINFO_SIZE] {
        let mut out = [0u8; SYSINFO_SIZE];
        let words = [
            self.uptime,
            self.loads[0],
            self.loads[1],
            self.loads[2],
            self.totalram,
            self.freeram,
            self.sharedram,
            self.bufferram,
            self.totalswap,
            self.freeswap,
        ];
        for (i, word) in words.iter().enumerate() {
            out[i * 8..i * 8 + 8].copy_from_slice(&word.to_le_bytes());
        }
        out[80..82].copy_from_slice(&self.procs.to_le_bytes());
        out[88..96].copy_from_slice(&self.totalhigh.to_le_bytes());
        out[96..104].copy_from_slice(&self.freehigh.to_le_bytes());
        out[104..108].copy_from_slice(&self.mem_unit.to_le_bytes());
        out
    }
}

#[cfg(test)]
mod tests;
