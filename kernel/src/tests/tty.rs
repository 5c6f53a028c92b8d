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
