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
