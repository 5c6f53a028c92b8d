//! `poll`/`ppoll` and `select`/`pselect6`: the event bits ([`PollEvents`]),
//! `struct pollfd` ([`PollFd`]), which events a descriptor reports
//! ([`PollEvents::reported`]), which of select's sets they put it in
//! ([`SelectReady`]), and [`PIPE_BUF`], the size up to which a pipe write
//! is atomic.

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

/// Which of `select`'s sets a descriptor is ready for, from the events
/// `poll` reports for it (Linux's `POLLIN_SET`, `POLLOUT_SET` and
/// `POLLEX_SET`): read when readable, hung up or in error; write when
/// writable or in error; except with priority data.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SelectReady {
    /// Ready for reading (`readfds`).
    pub read: bool,
    /// Ready for writing (`writefds`).
    pub write: bool,
    /// An exceptional condition (`exceptfds`).
    pub except: bool,
}

impl SelectReady {
    /// The events that put a descriptor in `readfds`.
    pub const READ_SET: PollEvents =
        PollEvents::READABLE.union(PollEvents::RDBAND).union(PollEvents::HUP).union(PollEvents::ERR);
    /// The events that put a descriptor in `writefds`.
    pub const WRITE_SET: PollEvents = PollEvents::WRITABLE.union(PollEvents::WRBAND).union(PollEvents::ERR);
    /// The events that put a descriptor in `exceptfds`.
    pub const EXCEPT_SET: PollEvents = PollEvents::PRI;

    /// The events to ask `poll` for a descriptor in the given sets.
    pub const fn requested(read: bool, write: bool, except: bool) -> PollEvents {
        let mut events = PollEvents::empty();
        if read {
            events = events.union(Self::READ_SET);
        }
        if write {
            events = events.union(Self::WRITE_SET);
        }
        if except {
            events = events.union(Self::EXCEPT_SET);
        }
        events
    }

    /// The sets a descriptor asked with `requested` ([`Self::requested`])
    /// is ready for, given the `revents` poll reported.
    pub const fn from_events(requested: PollEvents, revents: PollEvents) -> SelectReady {
        SelectReady {
            read: requested.intersects(PollEvents::IN) && revents.intersects(Self::READ_SET),
            write: requested.intersects(PollEvents::OUT) && revents.intersects(Self::WRITE_SET),
            except: requested.intersects(PollEvents::PRI) && revents.intersects(Self::EXCEPT_SET),
        }
    }

    /// How many set bits this makes (what `select` counts).
    pub const fn count(self) -> usize {
        self.read as usize + self.write as usize + self.except as usize
    }
}

/// Bytes of an `fd_set` covering descriptors below `n`: whole 64-bit
/// words, as Linux reads and writes them.
pub const fn fd_set_bytes(n: usize) -> usize {
    n.div_ceil(64) * 8
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
    fn select_sets() {
        let read_only = SelectReady::requested(true, false, false);
        // A hung-up pipe is readable to select; an error makes it both.
        assert_eq!(SelectReady::from_events(read_only, PollEvents::HUP).count(), 1);
        let both = SelectReady::requested(true, true, true);
        let ready = SelectReady::from_events(both, PollEvents::ERR);
        assert_eq!(ready, SelectReady { read: true, write: true, except: false });
        assert_eq!(ready.count(), 2);
        // Hang-up alone says nothing to a writer or to exceptfds.
        let write_except = SelectReady::requested(false, true, true);
        assert_eq!(SelectReady::from_events(write_except, PollEvents::HUP).count(), 0);
        assert_eq!(fd_set_bytes(0), 0);
        assert_eq!(fd_set_bytes(1), 8);
        assert_eq!(fd_set_bytes(65), 16);
        assert_eq!(fd_set_bytes(1024), 128);
    }

    #[test]
    fn error_and_hangup_are_always_reported() {
        let ready = PollEvents::IN | PollEvents::HUP | PollEvents::ERR | PollEvents::OUT;
        assert_eq!(PollEvents::reported(ready, PollEvents::empty()), PollEvents::HUP | PollEvents::ERR);
        assert_eq!(PollEvents::reported(ready, PollEvents::IN), PollEvents::IN | PollEvents::HUP | PollEvents::ERR);
        assert_eq!(PollEvents::reported(PollEvents::ALWAYS_READY, PollEvents::OUT), PollEvents::OUT);
    }
}
