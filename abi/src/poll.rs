//! `poll`/`ppoll`: the event bits ([`PollEvents`]), `struct pollfd`
//! ([`PollFd`]), which events a descriptor reports ([`PollEvents::reported`])
//! and [`PIPE_BUF`], the size up to which a pipe write is atomic.

use bitflags::bitflags;

/// Writes of at most this many bytes to a pipe are atomic: never
/// interleaved with other writers' bytes.
pub const PIPE_BUF: usize = 4096;

bitflags! {
    /// `POLL*`: the events of `struct pollfd` (a `short`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct PollEvents: u16 {
        /// `POLLIN`: there is data to read.
        const IN = 0x1;
        /// `POLLPRI`: there is urgent data to read.
        const PRI = 0x2;
        /// `POLLOUT`: writing will not block.
        const OUT = 0x4;
        /// `POLLERR`: an error condition (always reported).
        const ERR = 0x8;
        /// `POLLHUP`: the other end hung up (always reported).
        const HUP = 0x10;
        /// `POLLNVAL`: the descriptor is not open (always reported).
        const NVAL = 0x20;
        /// `POLLRDNORM`: normal data to read.
        const RDNORM = 0x40;
        /// `POLLRDBAND`: priority data to read.
        const RDBAND = 0x80;
        /// `POLLWRNORM`: normal data may be written.
        const WRNORM = 0x100;
        /// `POLLWRBAND`: priority data may be written.
        const WRBAND = 0x200;
        /// `POLLMSG`: unused by Linux.
        const MSG = 0x400;
        /// `POLLRDHUP`: the peer shut down its writing half (sockets).
        const RDHUP = 0x2000;
    }
}

impl PollEvents {
    /// What a regular file always is: readable and writable (Linux's
    /// `DEFAULT_POLLMASK`).
    pub const ALWAYS_READY: PollEvents =
        PollEvents::IN.union(PollEvents::OUT).union(PollEvents::RDNORM).union(PollEvents::WRNORM);
    /// Readable: `POLLIN | POLLRDNORM`.
    pub const READABLE: PollEvents = PollEvents::IN.union(PollEvents::RDNORM);
    /// Writable: `POLLOUT | POLLWRNORM`.
    pub const WRITABLE: PollEvents = PollEvents::OUT.union(PollEvents::WRNORM);

    /// What `poll` writes to `revents` for a descriptor that is `ready`
    /// when `requested` was asked for: the requested events, and
    /// `POLLERR`/`POLLHUP` whether asked for or not.
    pub const fn reported(ready: PollEvents, requested: PollEvents) -> PollEvents {
        ready.intersection(requested.union(PollEvents::ERR).union(PollEvents::HUP))
    }
}

/// `struct pollfd` (8 bytes): `int fd; short events; short revents;`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PollFd {
    /// The descriptor; a negative one is skipped (its `revents` is 0).
    pub fd: i32,
    /// The events asked for (unknown bits kept, never reported).
    pub events: PollEvents,
}

impl PollFd {
    /// Its size in user memory.
    pub const SIZE: usize = 8;
    /// Where `revents` lies in it.
    pub const REVENTS_OFFSET: usize = 6;

    /// The entry in `bytes` (little-endian).
    pub const fn from_bytes(bytes: [u8; PollFd::SIZE]) -> PollFd {
        PollFd {
            fd: i32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
            events: PollEvents::from_bits_retain(u16::from_le_bytes([bytes[4], bytes[5]])),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linux_values() {
        assert_eq!(PollEvents::ALWAYS_READY.bits(), 0x145);
        assert_eq!(PollEvents::RDHUP.bits(), 0x2000);
        assert_eq!(PIPE_BUF, 4096);
    }

    #[test]
    fn pollfd_layout() {
        let entry = PollFd::from_bytes([3, 0, 0, 0, 0x05, 0x20, 0xff, 0xff]);
        assert_eq!(entry, PollFd { fd: 3, events: PollEvents::from_bits_retain(0x2005) });
        assert!(entry.events.contains(PollEvents::IN | PollEvents::OUT | PollEvents::RDHUP));
        assert_eq!(PollFd::from_bytes([0xff; 8]).fd, -1);
    }

    #[test]
    fn error_and_hangup_are_always_reported() {
        let ready = PollEvents::IN | PollEvents::HUP | PollEvents::ERR | PollEvents::OUT;
        assert_eq!(PollEvents::reported(ready, PollEvents::empty()), PollEvents::HUP | PollEvents::ERR);
        assert_eq!(PollEvents::reported(ready, PollEvents::IN), PollEvents::IN | PollEvents::HUP | PollEvents::ERR);
        assert_eq!(PollEvents::reported(PollEvents::ALWAYS_READY, PollEvents::OUT), PollEvents::OUT);
    }
}
