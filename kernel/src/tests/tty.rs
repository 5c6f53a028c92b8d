//! Tests of the console terminal: typed bytes go through the line
//! discipline to a reader (the path the UART's interrupt feeds).

use aspen_mm::errno::Errno;

use crate::{check, check_eq, kernel_test, tty};

kernel_test!(
    fn a_typed_line_is_edited_and_read_whole() -> TestResult {
        check_eq!(tty::read(16, true, tty::Node::Console), Err(Errno::EAGAIN));
        tty::input(b"abc\x7fd");
        check!(!tty::readable(), "half a line is readable");
        check_eq!(tty::read(16, true, tty::Node::Console), Err(Errno::EAGAIN));
        tty::input(b"\r");
        check!(tty::readable(), "a complete line is not readable");
        check_eq!(tty::read(16, true, tty::Node::Console), Ok(b"abd\n".to_vec()));
        tty::input(b"x\x15y\ntwo\n");
        check_eq!(tty::read(16, true, tty::Node::Console), Ok(b"y\n".to_vec()));
        check_eq!(tty::read(2, true, tty::Node::Console), Ok(b"tw".to_vec()));
        check_eq!(tty::read(16, true, tty::Node::Console), Ok(b"o\n".to_vec()));
        check_eq!(tty::read(0, true, tty::Node::Console), Ok(alloc::vec::Vec::new()));
        Ok(())
    }
);

kernel_test!(
    fn typing_allocates_nothing() -> TestResult {
        // Checks are on in test runs: an allocation under the discipline
        // would be counted. Edits, reprints, empty lines, then a line past
        // the buffer's size (its end still taken, what follows dropped).
        let before = crate::failslab::no_alloc_allocations();
        tty::input(b"ab\x12\x7f\x17\x15cd\x12\n\x04\x04");
        for _ in 0..20 {
            tty::input(&[b'z'; 250]);
        }
        tty::input(b"\n\n\x04");
        let after = crate::failslab::no_alloc_allocations();
        while tty::readable() {
            let _ = tty::read(4096, true, tty::Node::Console);
        }
        check_eq!(after - before, 0);
        Ok(())
    }
);
