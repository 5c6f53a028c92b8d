//! The `rt_sigframe` a handler runs on, written and read as arm64 Linux
//! does (`setup_sigframe`, `restore_sigframe`): where it goes on the stack
//! ([`FrameLayout`]), its bytes from the interrupted state ([`encode`]), and
//! that state back from bytes user code may have changed ([`decode`], with
//! `valid_user_regs`' rule on `pstate`).

use alloc::vec::Vec;
use core::mem::{offset_of, size_of};

use super::{
    ContextHeader, EsrContext, FpsimdContext, FrameRecord, RtSigFrame, SigContext, SigInfo, SigSet, StackT, UContext,
};

/// The interrupted user state a frame saves and `rt_sigreturn` restores.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedState {
    /// x0 to x30.
    pub regs: [u64; 31],
    /// `sp`.
    pub sp: u64,
    /// `pc`.
    pub pc: u64,
    /// `pstate` (SPSR).
    pub pstate: u64,
    /// FPSR.
    pub fpsr: u32,
    /// FPCR.
    pub fpcr: u32,
    /// v0 to v31.
    pub vregs: [u128; 32],
    /// The signal mask to go back to.
    pub sigmask: SigSet,
}

/// What a frame also says about the signal, not restored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameExtras {
    /// `fault_address`.
    pub fault_address: u64,
    /// The ESR of the fault, which adds an `esr_context` record.
    pub esr: Option<u64>,
    /// `uc_stack`.
    pub stack: StackT,
}

/// Where a frame goes: the frame record just below the stack top `top`
/// (16-byte aligned), the `rt_sigframe` below that.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameLayout {
    /// The `rt_sigframe` (the handler's `sp`).
    pub frame: u64,
    /// The `frame_record` (the handler's `x29`).
    pub record: u64,
}

/// The frame's size in user memory (16-byte aligned).
pub const FRAME_SIZE: u64 = size_of::<RtSigFrame>() as u64;
/// Offset of `uc` in the frame (the handler's third argument).
pub const UC_OFFSET: u64 = offset_of!(RtSigFrame, uc) as u64;
const MCONTEXT: usize = offset_of!(RtSigFrame, uc) + offset_of!(UContext, mcontext);
const RESERVED: usize = MCONTEXT + offset_of!(SigContext, reserved);
const RESERVED_SIZE: usize = 4096;
const FPSIMD_SIZE: usize = size_of::<FpsimdContext>();
const ESR_SIZE: usize = size_of::<EsrContext>();

impl FrameLayout {
    /// The layout below `top`; `None` when it would wrap below 0.
    pub const fn below(top: u64) -> Option<FrameLayout> {
        let Some(record) = top.checked_sub(size_of::<FrameRecord>() as u64) else { return None };
        let record = record & !15;
        match record.checked_sub(FRAME_SIZE) {
            Some(frame) => Some(FrameLayout { frame, record }),
            None => None,
        }
    }

    /// The bytes from `frame` to the stack top: frame and record.
    pub const fn len(&self) -> u64 {
        self.record + size_of::<FrameRecord>() as u64 - self.frame
    }

    /// Whether the layout is empty (it never is).
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn put(out: &mut [u8], at: usize, bytes: &[u8]) {
    out[at..at + bytes.len()].copy_from_slice(bytes);
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut w = [0; 8];
    w.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(w)
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut w = [0; 4];
    w.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(w)
}

/// The bytes of a frame and its record for `state` (with `uc_flags` and
/// `uc_link` 0, the `fpsimd_context` record, an `esr_context` record for a
/// fault, the terminating zero header), the record holding the
/// interrupted x29 and x30: [`FrameLayout::len`] bytes from the frame's
/// address. `info` is written only for `SA_SIGINFO` handlers, as Linux.
pub fn encode(state: &SavedState, extras: &FrameExtras, info: Option<&SigInfo>, layout: &FrameLayout) -> Vec<u8> {
    let mut out = alloc::vec![0u8; layout.len() as usize];
    if let Some(info) = info {
        put(&mut out, 0, &info.to_bytes());
    }
    let uc = offset_of!(RtSigFrame, uc);
    put(&mut out, uc + offset_of!(UContext, stack), &extras.stack.to_bytes());
    put(&mut out, uc + offset_of!(UContext, sigmask), &state.sigmask.0.to_le_bytes());
    put(&mut out, MCONTEXT + offset_of!(SigContext, fault_address), &extras.fault_address.to_le_bytes());
    for (i, reg) in state.regs.iter().enumerate() {
        put(&mut out, MCONTEXT + offset_of!(SigContext, regs) + i * 8, &reg.to_le_bytes());
    }
    put(&mut out, MCONTEXT + offset_of!(SigContext, sp), &state.sp.to_le_bytes());
    put(&mut out, MCONTEXT + offset_of!(SigContext, pc), &state.pc.to_le_bytes());
    put(&mut out, MCONTEXT + offset_of!(SigContext, pstate), &state.pstate.to_le_bytes());
    let mut at = RESERVED;
    put(&mut out, at, &FpsimdContext::MAGIC.to_le_bytes());
    put(&mut out, at + 4, &(FPSIMD_SIZE as u32).to_le_bytes());
    put(&mut out, at + offset_of!(FpsimdContext, fpsr), &state.fpsr.to_le_bytes());
    put(&mut out, at + offset_of!(FpsimdContext, fpcr), &state.fpcr.to_le_bytes());
    for (i, v) in state.vregs.iter().enumerate() {
        put(&mut out, at + offset_of!(FpsimdContext, vregs) + i * 16, &v.to_le_bytes());
    }
    at += FPSIMD_SIZE;
    if let Some(esr) = extras.esr {
        put(&mut out, at, &EsrContext::MAGIC.to_le_bytes());
        put(&mut out, at + 4, &(ESR_SIZE as u32).to_le_bytes());
        put(&mut out, at + 8, &esr.to_le_bytes());
    }
    // The terminating header stays zero; so do uc_flags and uc_link.
    let record = (layout.record - layout.frame) as usize;
    put(&mut out, record, &state.regs[29].to_le_bytes());
    put(&mut out, record + 8, &state.regs[30].to_le_bytes());
    out
}

/// Why `rt_sigreturn` refuses a frame (the caller gets SIGSEGV).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadFrame {
    /// `pstate` asks for another exception level, AArch32 or masked
    /// exceptions (Linux's `valid_user_regs`).
    Pstate,
    /// The record list has no `fpsimd_context`, one of the wrong size, an
    /// unknown record, or runs past the reserved area.
    Records,
    /// The frame is shorter than an `rt_sigframe`.
    Short,
}

/// PSTATE bits that are RES0 for AArch64 EL0 (Linux 6.1's
/// `SPSR_EL1_AARCH64_RES0_BITS`), with the single-step bit.
const PSTATE_RES0: u64 = 0xffff_ffff_0000_0000 | (0b11 << 26) | (0b11 << 22) | (0xff << 13) | (1 << 5) | (1 << 21);
/// M[4:0]: the mode, 0 for AArch64 EL0t.
const PSTATE_MODE: u64 = 0x1f;
/// DAIF: the exception masks.
const PSTATE_DAIF: u64 = 0xf << 6;

/// `pstate` as user code may set it: RES0 bits cleared; an error unless it
/// is AArch64 EL0t with no exception masked.
pub const fn valid_user_pstate(pstate: u64) -> Result<u64, BadFrame> {
    let pstate = pstate & !PSTATE_RES0;
    if pstate & (PSTATE_MODE | PSTATE_DAIF) != 0 {
        Err(BadFrame::Pstate)
    } else {
        Ok(pstate)
    }
}

/// The state a frame's bytes (from its start, at least [`FRAME_SIZE`])
/// hold, checked as `rt_sigreturn` checks it; the mask keeps neither
/// `SIGKILL` nor `SIGSTOP`. Also the `uc_stack` it holds.
pub fn decode(bytes: &[u8]) -> Result<(SavedState, StackT), BadFrame> {
    if (bytes.len() as u64) < FRAME_SIZE {
        return Err(BadFrame::Short);
    }
    let uc = offset_of!(RtSigFrame, uc);
    let sigmask = SigSet(u64_at(bytes, uc + offset_of!(UContext, sigmask))).blockable();
    let mut stack = [0; StackT::SIZE];
    stack.copy_from_slice(&bytes[uc + offset_of!(UContext, stack)..][..StackT::SIZE]);
    let mut regs = [0; 31];
    for (i, reg) in regs.iter_mut().enumerate() {
        *reg = u64_at(bytes, MCONTEXT + offset_of!(SigContext, regs) + i * 8);
    }
    let sp = u64_at(bytes, MCONTEXT + offset_of!(SigContext, sp));
    let pc = u64_at(bytes, MCONTEXT + offset_of!(SigContext, pc));
    let pstate = valid_user_pstate(u64_at(bytes, MCONTEXT + offset_of!(SigContext, pstate)))?;
    let mut fpsimd = None;
    let mut at = RESERVED;
    loop {
        if at + size_of::<ContextHeader>() > RESERVED + RESERVED_SIZE {
            return Err(BadFrame::Records);
        }
        let (magic, size) = (u32_at(bytes, at), u32_at(bytes, at + 4) as usize);
        match magic {
            0 if size == 0 => break,
            FpsimdContext::MAGIC if size == FPSIMD_SIZE && fpsimd.is_none() => fpsimd = Some(at),
            EsrContext::MAGIC if size == ESR_SIZE => {}
            _ => return Err(BadFrame::Records),
        }
        if at + size > RESERVED + RESERVED_SIZE {
            return Err(BadFrame::Records);
        }
        at += size;
    }
    let fp = fpsimd.ok_or(BadFrame::Records)?;
    let mut vregs = [0; 32];
    for (i, v) in vregs.iter_mut().enumerate() {
        let mut w = [0; 16];
        w.copy_from_slice(&bytes[fp + offset_of!(FpsimdContext, vregs) + i * 16..][..16]);
        *v = u128::from_le_bytes(w);
    }
    let state = SavedState {
        regs,
        sp,
        pc,
        pstate,
        fpsr: u32_at(bytes, fp + offset_of!(FpsimdContext, fpsr)),
        fpcr: u32_at(bytes, fp + offset_of!(FpsimdContext, fpcr)),
        vregs,
        sigmask,
    };
    Ok((state, StackT::from_bytes(&stack)))
}
