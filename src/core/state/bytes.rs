//! The byte reader and writer of a format-4 snapshot's binary body (issue 14): fixed-width
//! little-endian numbers and length-prefixed texts, read from a stream through one
//! reused buffer and written through one (so that neither a quarter million rows nor
//! the checksum under them costs a call per field).
//!
//! Every number read is untrusted (a damaged file whose seal was made again, a hand
//! edit, a bug): a length is checked against what is left of its section before a byte
//! is allocated, and a text that is not UTF-8 or not JSON is an error, never a panic.

use std::io::{Read, Write};

/// Reads one section of known length.
pub struct Src<R> {
    read: R,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    /// Bytes of the section not yet pulled into `buf`.
    left: u64,
}

/// Why a section did not decode: what and where, for the snapshot's note.
pub type BodyError = String;

impl<R: Read> Src<R> {
    /// A reader of the `len` bytes `read` gives.
    pub fn new(read: R, len: u64) -> Src<R> {
        Src { read, buf: vec![0; 1 << 16], pos: 0, end: 0, left: len }
    }

    /// Bytes of the section not read yet.
    pub fn remaining(&self) -> u64 {
        (self.end - self.pos) as u64 + self.left
    }

    /// The next `n` bytes, in one slice.
    pub fn take(&mut self, n: usize) -> Result<&[u8], BodyError> {
        if self.end - self.pos < n {
            self.fill(n)?;
        }
        let at = self.pos;
        self.pos += n;
        Ok(&self.buf[at..at + n])
    }

    fn fill(&mut self, n: usize) -> Result<(), BodyError> {
        if n as u64 > self.remaining() {
            return Err(format!("{n} bytes asked with {} left in the section", self.remaining()));
        }
        self.buf.copy_within(self.pos..self.end, 0);
        self.end -= self.pos;
        self.pos = 0;
        if self.buf.len() < n {
            self.buf.resize(n, 0);
        }
        // Read as much as fits (and the section holds), at least up to `n`.
        while self.end < n || (self.end < self.buf.len() && self.left > 0) {
            let room = (self.buf.len() - self.end).min(usize::try_from(self.left).unwrap_or(usize::MAX));
            if room == 0 {
                break;
            }
            let got = self.read.read(&mut self.buf[self.end..self.end + room]).map_err(|e| e.to_string())?;
            if got == 0 {
                return Err("the section ends before its length".into());
            }
            self.end += got;
            self.left -= got as u64;
            if self.end >= n && got < room {
                break;
            }
        }
        if self.end < n {
            return Err("the section ends before its length".into());
        }
        Ok(())
    }

    pub fn u8(&mut self) -> Result<u8, BodyError> {
        Ok(self.take(1)?[0])
    }

    pub fn u32(&mut self) -> Result<u32, BodyError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn u64(&mut self) -> Result<u64, BodyError> {
        let b = self.take(8)?;
        let mut a = [0; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// A length-prefixed run of bytes.
    pub fn bytes(&mut self) -> Result<&[u8], BodyError> {
        let len = self.u32()? as usize;
        self.take(len)
    }

    /// A length-prefixed UTF-8 text.
    pub fn str(&mut self) -> Result<&str, BodyError> {
        std::str::from_utf8(self.bytes()?).map_err(|_| "a text that is not UTF-8".to_string())
    }

    /// A length-prefixed JSON value's text, checked to be one.
    pub fn json(&mut self) -> Result<crate::core::json_text::JsonText, BodyError> {
        let text = self.str()?;
        crate::core::json_text::JsonText::from_checked(text)
            .map_err(|e| format!("a JSON text that does not parse ({e})"))
    }

    /// A length-prefixed JSON document read as `T` (the rare fields).
    pub fn doc<T: serde::de::DeserializeOwned>(&mut self) -> Result<T, BodyError> {
        serde_json::from_slice(self.bytes()?).map_err(|e| format!("rare fields that do not read ({e})"))
    }
}

/// Writes rows into a buffer passed on in 64 KB pieces.
pub struct Sink<W> {
    out: W,
    buf: Vec<u8>,
    /// Bytes passed on or buffered so far.
    pub written: u64,
}

impl<W: Write> Sink<W> {
    pub fn new(out: W) -> Sink<W> {
        Sink { out, buf: Vec::with_capacity(1 << 16), written: 0 }
    }

    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.buf.extend_from_slice(bytes);
        self.written += bytes.len() as u64;
        if self.buf.len() >= 1 << 16 {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    pub fn u8(&mut self, n: u8) -> std::io::Result<()> {
        self.put(&[n])
    }

    pub fn u32(&mut self, n: u32) -> std::io::Result<()> {
        self.put(&n.to_le_bytes())
    }

    pub fn u64(&mut self, n: u64) -> std::io::Result<()> {
        self.put(&n.to_le_bytes())
    }

    /// `bytes` as they are (rows already laid out: a lazily read snapshot's specs).
    pub fn raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.put(bytes)
    }

    /// `bytes` after their length.
    pub fn bytes(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let len = u32::try_from(bytes.len()).map_err(|_| std::io::Error::other("a text of 4 GB or more"))?;
        self.u32(len)?;
        self.put(bytes)
    }

    /// `value` as a length-prefixed JSON document.
    pub fn doc<T: serde::Serialize>(&mut self, value: &T) -> std::io::Result<()> {
        let text = serde_json::to_vec(value).map_err(std::io::Error::other)?;
        self.bytes(&text)
    }

    /// Passes the rest on; gives the writer back.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.out.write_all(&self.buf)?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::{Sink, Src};

    #[test]
    fn numbers_and_texts_read_back_across_refills() {
        let mut sink = Sink::new(Vec::new());
        for i in 0..50_000u32 {
            sink.u32(i).unwrap();
            sink.bytes(format!("text {i}").as_bytes()).unwrap();
            sink.u64(u64::from(i) << 33).unwrap();
        }
        let big = "x".repeat(200_000);
        sink.bytes(big.as_bytes()).unwrap();
        let bytes = sink.finish().unwrap();
        let mut src = Src::new(&bytes[..], bytes.len() as u64);
        for i in 0..50_000u32 {
            assert_eq!(src.u32().unwrap(), i);
            assert_eq!(src.str().unwrap(), format!("text {i}"));
            assert_eq!(src.u64().unwrap(), u64::from(i) << 33);
        }
        assert_eq!(src.str().unwrap(), big);
        assert_eq!(src.remaining(), 0);
        assert!(src.u8().is_err());
    }

    #[test]
    fn a_length_past_the_section_is_an_error_not_an_allocation() {
        let bytes = u32::MAX.to_le_bytes();
        let mut src = Src::new(&bytes[..], 4);
        assert!(src.bytes().unwrap_err().contains("left in the section"));
        // A section said longer than the bytes behind it.
        let mut src = Src::new(&b"ab"[..], 10);
        assert!(src.take(5).is_err());
    }
}
