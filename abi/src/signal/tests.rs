//! The signal structures against Linux's arm64 sizes and offsets.

use core::mem::{align_of, offset_of, size_of};

use super::*;
use alloc::string::ToString;
use alloc::vec::Vec;

#[test]
fn signal_numbers_and_names() {
    let numbers: Vec<u8> = Signal::ALL.iter().map(|s| s.number()).collect();
    assert_eq!(numbers, (1..=31).collect::<Vec<u8>>());
    assert_eq!(Signal::from_number(0), None);
    assert_eq!(Signal::from_number(SIGRTMIN), None);
    assert_eq!(Signal::from_number(0x104), None);
    assert_eq!(Signal::from_number(17), Some(Signal::Chld));
    assert_eq!(Signal::Segv.to_string(), "SIGSEGV");
    assert_eq!(Signal::Kill.mask(), SigSet(1 << 8));
    assert_eq!(SaFlags::RESTORER.bits(), 0x0400_0000);
}

#[test]
fn sigaction_and_siginfo_layouts() {
    assert_eq!(size_of::<SigAction>(), 32);
    assert_eq!(offset_of!(SigAction, flags), 8);
    assert_eq!(offset_of!(SigAction, restorer), 16);
    assert_eq!(offset_of!(SigAction, mask), 24);
    assert_eq!(size_of::<SigInfo>(), SigInfo::SIZE);
    assert_eq!(offset_of!(SigInfo, code), 8);
    assert_eq!(offset_of!(SigInfo, fields), 16);
    let fault = SigInfo::fault(Signal::Segv, SEGV_MAPERR, 0xdead_0000);
    assert_eq!((fault.signo, fault.code, fault.fields[0]), (11, 1, 0xdead_0000));
    let child = SigInfo::child(CLD_EXITED, 7, 0, 3 << 8);
    assert_eq!((child.signo, child.fields[0], child.fields[1]), (17, 7, 0x300));
}

#[test]
fn sigcontext_layout() {
    assert_eq!(size_of::<StackT>(), 24);
    assert_eq!(size_of::<ContextHeader>(), 8);
    assert_eq!(offset_of!(SigContext, regs), 8);
    assert_eq!(offset_of!(SigContext, sp), 256);
    assert_eq!(offset_of!(SigContext, pc), 264);
    assert_eq!(offset_of!(SigContext, pstate), 272);
    assert_eq!(offset_of!(SigContext, reserved), 288);
    assert_eq!(size_of::<ReservedArea>(), 4096);
    assert_eq!(align_of::<SigContext>(), 16);
    assert_eq!(size_of::<SigContext>(), 288 + 4096);
    assert_eq!(FpsimdContext::MAGIC, 0x4650_8001);
    assert_eq!(size_of::<FpsimdContext>(), 528);
    assert_eq!(offset_of!(FpsimdContext, fpsr), 8);
    assert_eq!(offset_of!(FpsimdContext, vregs), 16);
    assert_eq!(size_of::<EsrContext>(), 16);
}

#[test]
fn ucontext_and_rt_sigframe_layouts() {
    assert_eq!(offset_of!(UContext, stack), 16);
    assert_eq!(offset_of!(UContext, sigmask), 40);
    assert_eq!(offset_of!(UContext, mcontext), 176);
    assert_eq!(size_of::<UContext>(), 176 + 4384);
    assert_eq!(offset_of!(RtSigFrame, uc), 128);
    assert_eq!(size_of::<RtSigFrame>(), 128 + 4560);
    assert_eq!(size_of::<FrameRecord>(), 16);
}

#[test]
fn signal_numbers_default_actions_and_sets() {
    assert_eq!(SigNo::new(0), None);
    assert_eq!(SigNo::new(65), None);
    let rt = SigNo::new(34).unwrap();
    assert!(rt.is_realtime() && rt.standard().is_none());
    assert_eq!(rt.to_string(), "SIGRT2");
    assert_eq!(SigNo::from(Signal::Usr1).default_action(), DefaultAction::Terminate);
    assert_eq!(SigNo::from(Signal::Segv).default_action(), DefaultAction::CoreDump);
    assert_eq!(SigNo::from(Signal::Chld).default_action(), DefaultAction::Ignore);
    assert_eq!(SigNo::from(Signal::Urg).default_action(), DefaultAction::Ignore);
    assert_eq!(SigNo::from(Signal::Winch).default_action(), DefaultAction::Ignore);
    assert_eq!(SigNo::from(Signal::Cont).default_action(), DefaultAction::Continue);
    assert_eq!(SigNo::from(Signal::Tstp).default_action(), DefaultAction::Stop);
    assert_eq!(rt.default_action(), DefaultAction::Terminate);
    assert!(SigNo::from(Signal::Kill).is_kernel_only() && SigNo::from(Signal::Stop).is_kernel_only());
    assert_eq!(SigSet(u64::MAX).blockable().0, !(1 << 8) & !(1 << 18));
    // Synchronous signals first, then the lowest number.
    let set =
        SigSet::EMPTY.with(SigNo::from(Signal::Usr1)).with(SigNo::from(Signal::Segv)).with(SigNo::from(Signal::Hup));
    assert_eq!(set.next(), Some(SigNo::from(Signal::Segv)));
    assert_eq!(set.without(SigNo::from(Signal::Segv)).next(), Some(SigNo::from(Signal::Hup)));
    assert_eq!(SigSet::EMPTY.next(), None);
    assert_eq!(SigSet(1 << 63).next(), SigNo::new(64));
}

#[test]
fn sigprocmask_rules() {
    assert_eq!(MaskHow::from_register(3), Err(Errno::EINVAL));
    let kill_stop = SigSet::UNBLOCKABLE;
    assert_eq!(MaskHow::from_register(0).unwrap().apply(SigSet(1), kill_stop | SigSet(2)), SigSet(3));
    assert_eq!(MaskHow::Unblock.apply(SigSet(3), SigSet(1)), SigSet(2));
    assert_eq!(MaskHow::SetMask.apply(SigSet(3), SigSet(u64::MAX)), SigSet(u64::MAX).blockable());
}

#[test]
fn sigaction_round_trip_and_flag_rules() {
    let mut raw = [0u8; 32];
    raw[..8].copy_from_slice(&0x1234u64.to_le_bytes());
    let flags = SaFlags::SIGINFO | SaFlags::RESTORER | SaFlags::UNSUPPORTED;
    raw[8..16].copy_from_slice(&(flags.bits() | 1 << 40).to_le_bytes());
    raw[16..24].copy_from_slice(&0x5678u64.to_le_bytes());
    raw[24..].copy_from_slice(&u64::MAX.to_le_bytes());
    let action = SigAction::from_bytes(raw);
    assert_eq!(action.handler, 0x1234);
    assert_eq!(action.flags, SaFlags::SIGINFO | SaFlags::RESTORER, "unknown bits and SA_UNSUPPORTED cleared");
    assert_eq!(action.mask, SigSet(u64::MAX).blockable());
    assert_eq!(SigAction::from_bytes(action.to_bytes()), action);
    assert!(action.is_handler());
    let chld = SigNo::from(Signal::Chld);
    assert!(SigAction::DEFAULT.ignores(chld));
    assert!(SigAction::DEFAULT.ignores(SigNo::from(Signal::Cont)), "Linux's sig_kernel_ignore has SIGCONT");
    assert!(!SigAction::DEFAULT.ignores(SigNo::from(Signal::Stop)));
    assert!(SigAction { handler: SIG_IGN, ..SigAction::DEFAULT }.ignores(SigNo::from(Signal::Usr1)));
}

#[test]
fn siginfo_round_trip() {
    let info = SigInfo::from_process(SigNo::new(40).unwrap(), SI_TKILL, 77);
    let bytes = info.to_bytes();
    assert_eq!(&bytes[..4], &40i32.to_le_bytes());
    assert_eq!(&bytes[8..12], &SI_TKILL.to_le_bytes());
    assert_eq!(&bytes[16..20], &77u32.to_le_bytes());
    assert_eq!(SigInfo::from_bytes(&bytes), info);
    assert_eq!(info.signo(), SigNo::new(40));
}

#[test]
fn restart_rules() {
    assert_eq!(Restart::from_result(Errno::ERESTARTSYS.as_neg() as u64), Some(Restart::Sys));
    assert_eq!(Restart::from_result(Errno::EINTR.as_neg() as u64), None);
    for restart in [Restart::Sys, Restart::NoIntr, Restart::NoHand] {
        assert_eq!(Restart::from_result(restart.errno().as_neg() as u64), Some(restart));
        assert!(restart.restarts(None), "no handler: always restart");
    }
    assert!(Restart::Sys.restarts(Some(SaFlags::RESTART)));
    assert!(!Restart::Sys.restarts(Some(SaFlags::SIGINFO)));
    assert!(!Restart::NoHand.restarts(Some(SaFlags::RESTART)));
    assert!(Restart::NoIntr.restarts(Some(SaFlags::empty())));
}

#[test]
fn altstack_rules() {
    let mut alt = AltStack::default();
    assert_eq!(alt.report(0x1000).flags, SS_DISABLE);
    let small = StackT { sp: 0x10000, flags: 0, size: MINSIGSTKSZ - 1 };
    assert_eq!(alt.set(small, 0x9000_0000), Err(Errno::ENOMEM));
    assert_eq!(alt.set(StackT { flags: 4, ..small }, 0x9000_0000), Err(Errno::EINVAL));
    let stack = StackT { sp: 0x10000, flags: 0, size: 0x4000 };
    assert_eq!(alt.set(stack, 0x9000_0000), Ok(()));
    assert_eq!(alt.report(0x9000_0000), stack);
    assert_eq!(alt.report(0x12000).flags, SS_ONSTACK);
    assert_eq!(alt.set(StackT { flags: SS_DISABLE, ..stack }, 0x12000), Err(Errno::EPERM));
    assert_eq!(alt.frame_top(0x9000_0000, SaFlags::ONSTACK), 0x14000);
    assert_eq!(alt.frame_top(0x9000_0000, SaFlags::empty()), 0x9000_0000);
    assert_eq!(alt.frame_top(0x12000, SaFlags::ONSTACK), 0x12000, "already on it: stays");
    assert_eq!(alt.set(StackT { flags: SS_DISABLE, ..stack }, 0x9000_0000), Ok(()));
    assert_eq!(alt.report(0).flags, SS_DISABLE);
    assert_eq!((alt.sp, alt.size), (0, 0));
}

mod frames {
    use super::super::frame::*;
    use super::*;

    fn state() -> SavedState {
        let mut regs = [0; 31];
        for (i, r) in regs.iter_mut().enumerate() {
            *r = 0x1000 + i as u64;
        }
        let mut vregs = [0; 32];
        for (i, v) in vregs.iter_mut().enumerate() {
            *v = (i as u128) << 100 | 0xabc;
        }
        SavedState {
            regs,
            sp: 0x7fff_0000,
            pc: 0x40_1000,
            pstate: 0x6000_0000,
            fpsr: 0x10,
            fpcr: 0x0300_0000,
            vregs,
            sigmask: SigSet(0x5),
        }
    }

    #[test]
    fn layout_is_linux() {
        let layout = FrameLayout::below(0x7fff_0008).unwrap();
        assert_eq!(layout.record, 0x7ffe_fff0);
        assert_eq!(layout.frame, 0x7ffe_fff0 - 4688);
        assert_eq!(layout.frame % 16, 0);
        assert_eq!(layout.len(), 4688 + 16);
        assert_eq!(FrameLayout::below(100), None);
    }

    #[test]
    fn encode_decode_round_trip() {
        let layout = FrameLayout::below(0x7fff_0000).unwrap();
        let info = SigInfo::fault(Signal::Segv, SEGV_ACCERR, 0xdead);
        let extras = FrameExtras {
            fault_address: 0xdead,
            esr: Some(0x9200_004f),
            stack: StackT { sp: 0, flags: SS_DISABLE, size: 0 },
        };
        let bytes = encode(&state(), &extras, Some(&info), &layout);
        assert_eq!(&bytes[..128], &info.to_bytes());
        let reserved = 128 + 176 + 288;
        assert_eq!(&bytes[reserved..reserved + 8], &[0x01, 0x80, 0x50, 0x46, 0x10, 0x02, 0, 0]);
        assert_eq!(&bytes[reserved + 528..reserved + 532], &EsrContext::MAGIC.to_le_bytes());
        assert_eq!(&bytes[reserved + 544..reserved + 552], &[0; 8], "terminator");
        let record = (layout.record - layout.frame) as usize;
        assert_eq!(&bytes[record..record + 8], &0x101du64.to_le_bytes(), "x29");
        assert_eq!(&bytes[record + 8..record + 16], &0x101eu64.to_le_bytes(), "x30");
        let (decoded, stack) = decode(&bytes).unwrap();
        assert_eq!(decoded, state());
        assert_eq!(stack.flags, SS_DISABLE);
    }

    #[test]
    fn decode_refuses_what_linux_refuses() {
        let layout = FrameLayout::below(0x7fff_0000).unwrap();
        let extras = FrameExtras { fault_address: 0, esr: None, stack: StackT::default() };
        let good = encode(&state(), &extras, None, &layout);
        assert_eq!(decode(&good[..100]), Err(BadFrame::Short));
        let pstate_at = 128 + 176 + 272;
        for bad in [0x5u64, 0x10, 0x3c0, 0x80] {
            let mut bytes = good.clone();
            bytes[pstate_at..pstate_at + 8].copy_from_slice(&bad.to_le_bytes());
            assert_eq!(decode(&bytes), Err(BadFrame::Pstate), "{bad:#x}");
        }
        let mut bytes = good.clone();
        bytes[pstate_at..pstate_at + 8].copy_from_slice(&(0xf000_0000u64 | 1 << 40 | 1 << 21).to_le_bytes());
        assert_eq!(decode(&bytes).unwrap().0.pstate, 0xf000_0000, "RES0 and SS cleared");
        let mut bytes = good.clone();
        bytes[128 + 176 + 288] = 0;
        assert_eq!(decode(&bytes), Err(BadFrame::Records), "no fpsimd record");
        let mut bytes = good.clone();
        bytes[128 + 40..128 + 48].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(decode(&bytes).unwrap().0.sigmask, SigSet(u64::MAX).blockable());
    }

    proptest::proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..5000)) {
            let _ = decode(&bytes);
        }
    }
}
