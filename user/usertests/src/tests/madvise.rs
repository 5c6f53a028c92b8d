//! madvise(MADV_DONTNEED): private anonymous memory reads zero afterwards,
//! shared memory keeps its contents, a private file mapping shows the file
//! again; bad ranges give EINVAL / ENOMEM.

use aspen_sys::fs::{self, OpenFlags};
use aspen_sys::mem::{self, PAGE_SIZE as P};
use aspen_sys::mem::{Advice, MapFlags, Prot};
use aspen_sys::Errno;

use crate::ensure;
use crate::harness::{expect_errno, in_child, Context, Ctx, Region, TestResult};
use crate::tests::file::{pattern, FILE_PAGES, PRIVATE_FILE};

const RW: Prot = Prot::READ.union(Prot::WRITE);

/// `madvise(addr, len, MADV_DONTNEED)`.
fn dontneed(addr: usize, len: usize) -> Result<(), Errno> {
    // SAFETY: the tests expect (and check) the range's contents to go.
    unsafe { mem::madvise(addr, len, Advice::DontNeed) }
}

pub fn dontneed_semantics(_: &Context) -> TestResult {
    let private = Region::anon(4, RW, MapFlags::PRIVATE)?;
    private.fill(0, private.len, 0x5A);
    dontneed(private.page(1), P).ctx("MADV_DONTNEED of one private page")?;
    ensure!(private.find_not(P, 2 * P, 0).is_none(), "private page not zero after MADV_DONTNEED");
    ensure!(
        private.find_not(0, P, 0x5A).is_none() && private.find_not(2 * P, 4 * P, 0x5A).is_none(),
        "MADV_DONTNEED of one page changed its neighbours"
    );
    dontneed(private.addr, private.len).ctx("MADV_DONTNEED of the private mapping")?;
    ensure!(private.find_not(0, private.len, 0).is_none(), "private memory not zero after MADV_DONTNEED");
    private.write(5, 0x66);
    ensure!(private.read(5) == 0x66, "private memory not writable after MADV_DONTNEED");

    let shared = Region::anon(4, RW, MapFlags::SHARED)?;
    shared.fill(0, shared.len, 0x6B);
    dontneed(shared.addr, shared.len).ctx("MADV_DONTNEED of the shared mapping")?;
    ensure!(shared.find_not(0, shared.len, 0x6B).is_none(), "shared memory lost its contents to MADV_DONTNEED");
    in_child("child dropping its view of shared memory", || {
        dontneed(shared.addr, shared.len).ctx("MADV_DONTNEED in the child")?;
        ensure!(shared.read(100) == 0x6B, "child: shared memory lost its contents to MADV_DONTNEED");
        shared.write(200, 0x6C);
        Ok(())
    })?;
    ensure!(
        shared.read(200) == 0x6C && shared.read(100) == 0x6B,
        "parent lost shared contents after the child's MADV_DONTNEED"
    );

    let fd = fs::open(PRIVATE_FILE, OpenFlags::RDONLY, 0).ctx("open the private-mapping file")?;
    let file = Region::file(FILE_PAGES, RW, MapFlags::PRIVATE, fd)?;
    fs::close(fd).ctx("close")?;
    file.write(0, 0xF0);
    file.write(P + 1, 0xF1);
    dontneed(file.addr, file.len).ctx("MADV_DONTNEED of a private file mapping")?;
    ensure!(
        file.read(0) == pattern(0) && file.read(P + 1) == pattern(P + 1),
        "private file mapping does not show the file again after MADV_DONTNEED: {:#x} {:#x}",
        file.read(0),
        file.read(P + 1)
    );

    expect_errno("MADV_DONTNEED of an unaligned address", dontneed(private.addr + 1, P), Errno::EINVAL)?;
    let hole = Region::anon(1, RW, MapFlags::PRIVATE)?;
    // SAFETY: `hole` is never accessed after this.
    unsafe { mem::munmap(hole.addr, P) }.ctx("munmap")?;
    expect_errno("MADV_DONTNEED of an unmapped range", dontneed(hole.addr, P), Errno::ENOMEM)?;
    Ok(())
}
