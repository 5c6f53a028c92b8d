//! Shared anonymous memory (MAP_SHARED | MAP_ANONYMOUS) across fork.

use aspen_sys::mem::{self, PAGE_SIZE as P};
use aspen_sys::mem::{MapFlags, MsyncFlags, Prot};

use crate::ensure;
use crate::harness::{in_child, join, spawn, Context, Ctx, Region, Stage, TestResult};

/// Shared both ways, including a page first faulted in the child and a page
/// written by a grandchild; the data survives the writers' exit and the
/// child's munmap of its own view; msync succeeds.
pub fn shared_anon(_: &Context) -> TestResult {
    let sh = Region::anon(3, Prot::READ | Prot::WRITE, MapFlags::SHARED)?;
    let stage = Stage::at(&sh, 0); // page 0: the stage word
    sh.write(P, 0x11); // page 1: written before fork
                       // page 2: untouched before fork

    let pid = spawn(|| {
        ensure!(sh.read(P) == 0x11, "child does not see the pre-fork write");
        ensure!(sh.read(2 * P) == 0, "child: untouched shared page not zero");
        sh.write(P + 8, 0x22);
        sh.write(2 * P, 0x33); // the first touch of page 2
        in_child("grandchild", || {
            sh.write(2 * P + 16, 0x77);
            Ok(())
        })?;
        stage.set(1);
        stage.wait_for(2, None)?;
        ensure!(sh.read(P + 16) == 0x44, "child does not see the parent's post-fork write");
        ensure!(sh.read(2 * P + 8) == 0x55, "child does not see the parent's write to the page it faulted in");
        // SAFETY: the child no longer uses pages 1-2 of its view.
        unsafe { mem::munmap(sh.page(1), 2 * P) }.ctx("munmap in the child")?;
        Ok(())
    })?;

    stage.wait_for(1, Some(pid))?;
    ensure!(sh.read(P + 8) == 0x22, "parent does not see the child's write");
    ensure!(sh.read(2 * P) == 0x33, "parent does not see the child's write to a page first faulted in the child");
    ensure!(sh.read(2 * P + 16) == 0x77, "parent does not see the grandchild's write");
    sh.write(P + 16, 0x44);
    sh.write(2 * P + 8, 0x55);
    stage.set(2);
    join(pid, "child")?;
    ensure!(
        sh.read(P) == 0x11 && sh.read(P + 8) == 0x22 && sh.read(2 * P) == 0x33 && sh.read(2 * P + 16) == 0x77,
        "shared data lost after the child unmapped it and exited"
    );
    mem::msync(sh.addr, sh.len, MsyncFlags::SYNC).ctx("msync(MS_SYNC) on shared anonymous memory")?;
    Ok(())
}
