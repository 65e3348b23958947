//! Reading stdin line by line on a thread of its own (not tokio's stdin, whose blocking read
//! would keep the runtime from shutting down while a terminal is idle).

use std::io::{BufRead, Read};

use tokio::sync::mpsc;

use crate::app::Input;

/// The longest line taken, in bytes; longer lines are dropped whole ([`Input::TooLong`]).
pub const MAX_LINE: usize = 64 * 1024;

/// Lines of stdin, as they are typed or piped in; the channel closes at end of input.
pub fn stdin_lines() -> mpsc::Receiver<Input> {
    let (tx, rx) = mpsc::channel(64);
    std::thread::spawn(move || read_lines(std::io::stdin().lock(), &tx));
    rx
}

/// Send each line of `reader` (lossy UTF-8, terminator removed) until end of input, a read error
/// or a closed channel.
pub fn read_lines(mut reader: impl BufRead, tx: &mpsc::Sender<Input>) {
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = match (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
        {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        if n == 0 {
            return;
        }
        let item = if buf.last() != Some(&b'\n') && buf.len() > MAX_LINE {
            // Skip the rest of the long line.
            loop {
                buf.clear();
                match (&mut reader)
                    .take(MAX_LINE as u64)
                    .read_until(b'\n', &mut buf)
                {
                    Ok(0) | Err(_) => break,
                    Ok(_) if buf.last() == Some(&b'\n') => break,
                    Ok(_) => {}
                }
            }
            Input::TooLong
        } else {
            while matches!(buf.last(), Some(b'\n' | b'\r')) {
                buf.pop();
            }
            Input::Line(String::from_utf8_lossy(&buf).into_owned())
        };
        if tx.blocking_send(item).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_long_lines_and_bad_utf8() {
        let mut data = b"hello\r\nsecond\n".to_vec();
        data.extend(std::iter::repeat_n(b'x', MAX_LINE + 10));
        data.extend(b"\nafter \xff\nlast without newline");
        let (tx, mut rx) = mpsc::channel(16);
        read_lines(&data[..], &tx);
        drop(tx);
        let mut got = Vec::new();
        while let Ok(i) = rx.try_recv() {
            got.push(i);
        }
        assert_eq!(
            got,
            [
                Input::Line("hello".into()),
                Input::Line("second".into()),
                Input::TooLong,
                Input::Line("after \u{fffd}".into()),
                Input::Line("last without newline".into()),
            ]
        );
    }
}
