//! `sendfile(out_fd, in_fd, offset, count)`: bytes of a regular file to a
//! pipe, the console, a memory device or another file, without a trip
//! through user memory.
//!
//! As Linux (`do_sendfile`): the file is read at `*offset` when `offset`
//! is given (its own position stays, `*offset` advances by what moved),
//! else at its position (which advances). Into a pipe one call fills
//! what room there is, waiting for some first unless either end is
//! non-blocking; elsewhere it moves `count` bytes or up to the end of the
//! file. A transfer cut short reports exactly the bytes that moved.

use aspen_abi::fcntl::OpenFlags;
use aspen_abi::uaccess::UserSlice;
use aspen_fs::Whence;
use aspen_mm::errno::Errno;

use super::{copy_in, copy_out, partial, with_files, IO_CHUNK, MAX_IO};
use crate::pipe::WriteError;
use crate::process::fd::Description;
use crate::tty;

/// `sendfile`. In Linux's order: `EFAULT` for an `offset` that cannot be
/// read; `EBADF` for an `in_fd` not open for reading; `ESPIPE` for an
/// `offset` on a pipe or the console; `EINVAL` for a negative offset or
/// count; `EBADF` for an `out_fd` not open for writing; `EINVAL` for an
/// `out_fd` with `O_APPEND` (not a pipe) and for an `in_fd` that is not a
/// regular file.
pub(super) fn sendfile(out_fd: u64, in_fd: u64, offset: u64, count: u64) -> Result<u64, WriteError> {
    let offset_slot = match offset {
        0 => None,
        addr => Some(UserSlice::new(addr, 8).map_err(Errno::from)?),
    };
    let given = match offset_slot {
        Some(slot) => Some(i64::from_le_bytes(copy_in(slot)?.try_into().map_err(|_| Errno::EFAULT)?)),
        None => None,
    };
    let input = with_files(|f| f.get(in_fd))?;
    if !input.flags().readable() {
        return Err(Errno::EBADF.into());
    }
    // A pipe or the console has no position to read at.
    if given.is_some() && matches!(input.kind, Description::PipeRead(_) | Description::Console(_)) {
        return Err(Errno::ESPIPE.into());
    }
    let file = match &input.kind {
        Description::File(file) => Some(file.clone()),
        _ => None,
    };
    let start = match (given, &file) {
        (Some(at), _) => at,
        (None, Some(file)) => file.lseek(0, Whence::Current)? as i64,
        (None, None) => 0,
    };
    if start < 0 || (count as i64) < 0 {
        return Err(Errno::EINVAL.into());
    }
    let count = count.min(MAX_IO) as usize;
    let output = with_files(|f| f.get(out_fd))?;
    if !output.flags().writable() {
        return Err(Errno::EBADF.into());
    }
    let to_pipe = matches!(output.kind, Description::PipeWrite(_));
    if !to_pipe && output.flags().contains(OpenFlags::APPEND) {
        return Err(Errno::EINVAL.into());
    }
    // Only a regular file can be read from (a directory, a device, a pipe
    // or the console has no splice_read in Linux).
    let Some(file) = file else { return Err(Errno::EINVAL.into()) };
    let source = file.object().cloned().ok_or(Errno::EINVAL)?;
    let nonblocking = input.nonblocking() || output.nonblocking();
    let mut position = start as u64;
    let mut done = 0usize;
    let mut chunk = alloc::vec![0u8; count.min(IO_CHUNK)];
    let mut outcome = Ok(());
    while done < count {
        let want = (count - done).min(IO_CHUNK);
        let read = match source.read(position, &mut chunk[..want]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(errno) => {
                outcome = Err(WriteError::Errno(errno));
                break;
            }
        };
        let data = &chunk[..read];
        let written = match &output.kind {
            Description::PipeWrite(writer) => {
                let copy = |at: usize, piece: &mut [u8]| {
                    piece.copy_from_slice(&data[at..at + piece.len()]);
                    Ok(())
                };
                writer.write_some(data.len(), nonblocking, copy)
            }
            Description::Console(node) => {
                tty::check_write(*node).and_then(|()| tty::write(data)).map_err(WriteError::Errno).map(|()| data.len())
            }
            Description::File(out) => out.write(data, false).map_err(WriteError::Errno),
            Description::Device(device, _) => device.write(data.len()).map_err(WriteError::Errno),
            Description::PipeRead(_) | Description::Snapshot(_) => Err(WriteError::Errno(Errno::EBADF)),
        };
        match written {
            Ok(n) => {
                position += n as u64;
                done += n;
                // A pipe takes one fill per call; elsewhere short is the end.
                if to_pipe || n < read {
                    break;
                }
            }
            Err(WriteError::BrokenPipe { written }) => {
                outcome = Err(WriteError::BrokenPipe { written: done + written });
                position += written as u64;
                done += written;
                break;
            }
            Err(error) => {
                outcome = Err(error);
                break;
            }
        }
    }
    match offset_slot {
        Some(slot) => copy_out(slot, &position.to_le_bytes())?,
        None => {
            file.lseek(position as i64, Whence::Set)?;
        }
    }
    match outcome {
        Ok(()) => Ok(done as u64),
        Err(WriteError::Errno(errno)) => Ok(partial(done, errno)?),
        Err(broken) => Err(broken),
    }
}
