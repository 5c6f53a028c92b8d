use super::*;

#[test]
fn one_runnable_task_for_a_minute_gives_linux_figures() {
    // Twelve 5-second samples of one task take the averages 1 - e^-1,
    // 1 - e^-1/5 and 1 - e^-1/15 of the way to 1.
    let mut load = LoadAverages::default();
    for _ in 0..12 {
        load.sample(1, 1);
    }
    assert_eq!(load.text(), "0.63 0.18 0.06");
}

#[test]
fn samples_caught_up_at_once_match_samples_one_by_one_closely() {
    let mut stepped = LoadAverages([3 * FIXED_1, 2 * FIXED_1, FIXED_1]);
    let mut jumped = stepped;
    for _ in 0..30 {
        stepped.sample(0, 1);
    }
    jumped.sample(0, 30);
    for (a, b) in stepped.0.iter().zip(jumped.0) {
        assert!(a.abs_diff(b) <= 20, "{stepped:?} vs {jumped:?}");
    }
    assert!(jumped.0[0] < FIXED_1 / 2, "the 1-minute average decays in 150 s: {jumped:?}");
}

#[test]
fn no_samples_changes_nothing_and_a_steady_load_converges_to_it() {
    let mut load = LoadAverages([5, 6, 7]);
    load.sample(9, 0);
    assert_eq!(load, LoadAverages([5, 6, 7]));
    let mut load = LoadAverages::default();
    load.sample(2, 10_000);
    assert_eq!(load.text(), "2.00 2.00 2.00");
    assert_eq!(load.si_loads()[0] >> SI_LOAD_SHIFT, 2);
}

#[test]
fn text_rounds_to_hundredths() {
    assert_eq!(LoadAverages([0, FIXED_1 / 2, FIXED_1 * 3 + FIXED_1 / 4]).text(), "0.00 0.50 3.25");
}

#[test]
fn clock_ticks_convert_counter_ticks() {
    assert_eq!(clock_ticks(62_500_000, 62_500_000), 100);
    assert_eq!(clock_ticks(u64::MAX, 1_000_000_000), (u128::from(u64::MAX) * 100 / 1_000_000_000) as u64);
    assert_eq!(clock_ticks(5, 0), 500);
}

#[test]
fn sysinfo_layout_is_linuxs() {
    let info = Sysinfo {
        uptime: 1,
        loads: [2, 3, 4],
        totalram: 5,
        freeram: 6,
        sharedram: 7,
        bufferram: 8,
        totalswap: 9,
        freeswap: 10,
        procs: 0x1122,
        totalhigh: 12,
        freehigh: 13,
        mem_unit: 14,
    };
    let bytes = info.to_bytes();
    let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
    for (i, expected) in (1..=10).enumerate() {
        assert_eq!(word(i * 8), expected);
    }
    assert_eq!(&bytes[80..88], &[0x22, 0x11, 0, 0, 0, 0, 0, 0]);
    assert_eq!((word(88), word(96)), (12, 13));
    assert_eq!(&bytes[104..], &[14, 0, 0, 0, 0, 0, 0, 0]);
}

#[test]
fn memory_in_bytes_when_it_fits() {
    let pages = Sysinfo { totalram: 262_144, freeram: 1000, sharedram: 3, mem_unit: 4096, ..Default::default() };
    let bytes = pages.in_bytes();
    assert_eq!((bytes.totalram, bytes.freeram, bytes.sharedram, bytes.mem_unit), (1 << 30, 4_096_000, 12288, 1));
    let huge = Sysinfo { totalram: u64::MAX / 2, mem_unit: 4096, ..Default::default() };
    assert_eq!(huge.in_bytes(), huge);
}
