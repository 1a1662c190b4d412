//! A fixed-capacity ring buffer for non-blocking socket I/O.
//!
//! Every connection of the proxy owns a few of these, sized when the connection is accepted;
//! they never grow, so a session's memory is bounded by its buffers whatever flows through it.
//! Sockets and pipes read straight into the free space and write straight out of the data,
//! with vectored I/O where either one wraps around the end of the storage: no byte is copied
//! on its way through.
//!
//! ```text
//!  data not wrapped:
//!  +--------+======================+---------------+
//!  | free   |  data (readable)     |  free         |
//!  +--------+======================+---------------+
//!  0        head                   head+len        capacity
//!
//!  data wrapped:
//!  +==========+-------------------+================+
//!  | data (2) |  free (writable)  |  data (1)      |
//!  +==========+-------------------+================+
//!  0          head+len-capacity   head             capacity
//! ```
//!
//! `head` is the read cursor: the oldest byte not yet consumed. The write cursor is
//! `head + len` (modulo the capacity): where the next byte received goes. The invariant is
//! `head < capacity` and `len <= capacity`; when the buffer empties, both cursors go back to the
//! start so that the next read gets one contiguous slice.
//!
//! Memory is touched only as it is used: the storage is reserved at creation but initialised
//! (zeroed) in steps, as the write cursor first reaches it, and a socket read is offered at
//! most [`GROW`] bytes beyond what is initialised. A connection that only ever exchanges a few
//! lines keeps one page per buffer resident, however large the buffer; one that moves bulk
//! data initialises its whole buffer on the first pass and reads full buffers after that.
//!
//! ```text
//!  +======+-----------------+.........................+
//!  | data | free, zeroed    | reserved, untouched     |
//!  +======+-----------------+.........................+
//!  0      write             initialised               capacity
//! ```
#![deny(missing_docs)]

use std::io::{self, IoSlice, IoSliceMut, Read, Write};

/// How far beyond its initialised storage a buffer offers space to a socket read.
pub const GROW: usize = 4096;

/// A ring buffer of fixed capacity.
pub struct RingBuffer {
    /// `len()` is how much is initialised; `capacity()` is reserved once and never changes.
    storage: Vec<u8>,
    cap: usize,
    head: usize,
    len: usize,
}

impl RingBuffer {
    /// A buffer that holds at most `capacity` bytes. A capacity of zero is raised to one.
    pub fn new(capacity: usize) -> Self {
        let cap = capacity.max(1);
        RingBuffer {
            storage: Vec::with_capacity(cap),
            cap,
            head: 0,
            len: 0,
        }
    }

    /// How many bytes the buffer can hold.
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// How many bytes of storage have been initialised so far.
    pub fn initialised(&self) -> usize {
        self.storage.len()
    }

    /// How many bytes are waiting to be read.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there is nothing to read.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many bytes can still be written.
    pub fn free(&self) -> usize {
        self.capacity() - self.len
    }

    /// True when nothing more can be written.
    pub fn is_full(&self) -> bool {
        self.len == self.capacity()
    }

    /// The data, oldest first, as at most two slices (the second is empty unless it wraps).
    pub fn data(&self) -> (&[u8], &[u8]) {
        let cap = self.capacity();
        let end = self.head + self.len;
        if end <= cap {
            (&self.storage[self.head..end], &[])
        } else {
            let (wrapped, tail) = self.storage.split_at(self.head);
            (tail, &wrapped[..end - cap])
        }
    }

    /// The free space, in the order it fills, as at most two slices.
    pub fn space(&mut self) -> (&mut [u8], &mut [u8]) {
        self.space_upto(usize::MAX)
    }

    /// At most `limit` bytes of the free space, in the order it fills, initialised.
    pub fn space_upto(&mut self, limit: usize) -> (&mut [u8], &mut [u8]) {
        let cap = self.cap;
        let write = self.head + self.len;
        if write >= cap {
            // Wrapped: the free space lies before the read cursor, inside the data already
            // written once, so it is initialised.
            let start = write - cap;
            let end = self.head.min(start.saturating_add(limit));
            return (&mut self.storage[start..end], &mut []);
        }
        let first = (cap - write).min(limit);
        if self.storage.len() < write + first {
            self.storage.resize(write + first, 0);
        }
        // The part before the read cursor follows only when the first part reaches the end.
        let second = if first == cap - write {
            self.head.min(limit - first)
        } else {
            0
        };
        let (before, after) = self.storage.split_at_mut(write);
        (&mut after[..first], &mut before[..second])
    }

    /// How many bytes the next [`RingBuffer::read_from`] offers: the free space, but no more
    /// than [`GROW`] beyond the initialised storage.
    pub fn read_offer(&self) -> usize {
        let write = self.head + self.len;
        if write >= self.cap {
            return self.cap - self.len;
        }
        let reach = (self.storage.len().max(write) + GROW).min(self.cap);
        let first = reach - write;
        if first == self.cap - write {
            first + self.head
        } else {
            first
        }
    }

    /// The byte `offset` places after the read cursor.
    ///
    /// # Panics
    /// When `offset >= len()`.
    pub fn get(&self, offset: usize) -> u8 {
        assert!(
            offset < self.len,
            "offset {offset} beyond {} bytes of data",
            self.len
        );
        self.storage[(self.head + offset) % self.cap]
    }

    /// Marks `n` bytes as read, freeing their space.
    ///
    /// # Panics
    /// When `n > len()`.
    pub fn consume(&mut self, n: usize) {
        assert!(n <= self.len, "consume {n} of {} bytes", self.len);
        self.len -= n;
        self.head = if self.len == 0 {
            0
        } else {
            (self.head + n) % self.capacity()
        };
    }

    /// Marks `n` bytes of the free space as written.
    ///
    /// # Panics
    /// When `n > free()`.
    pub fn commit(&mut self, n: usize) {
        assert!(
            n <= self.free(),
            "commit {n} with {} bytes free",
            self.free()
        );
        self.len += n;
    }

    /// Copies as much of `bytes` as fits; returns how many bytes were taken.
    pub fn push(&mut self, bytes: &[u8]) -> usize {
        let (a, b) = self.space_upto(bytes.len());
        let first = a.len().min(bytes.len());
        a[..first].copy_from_slice(&bytes[..first]);
        let second = b.len().min(bytes.len() - first);
        b[..second].copy_from_slice(&bytes[first..first + second]);
        self.commit(first + second);
        first + second
    }

    /// Copies the first `out.len()` bytes of data into `out` without consuming them.
    ///
    /// # Panics
    /// When `out.len() > len()`.
    pub fn peek_into(&self, out: &mut [u8]) {
        let (a, b) = self.data();
        let first = a.len().min(out.len());
        out[..first].copy_from_slice(&a[..first]);
        let rest = out.len() - first;
        out[first..].copy_from_slice(&b[..rest]);
    }

    /// The offset of the first `byte` in the data, if any.
    pub fn find(&self, byte: u8) -> Option<usize> {
        let (a, b) = self.data();
        a.iter()
            .position(|&c| c == byte)
            .or_else(|| b.iter().position(|&c| c == byte).map(|i| i + a.len()))
    }

    /// Reads once from `source` into the free space; returns the byte count (0 at end of
    /// stream, or when the buffer is full).
    pub fn read_from<R: Read + ?Sized>(&mut self, source: &mut R) -> io::Result<usize> {
        if self.is_full() {
            return Ok(0);
        }
        let offer = self.read_offer();
        let n = {
            let (a, b) = self.space_upto(offer);
            if b.is_empty() {
                source.read(a)?
            } else {
                source.read_vectored(&mut [IoSliceMut::new(a), IoSliceMut::new(b)])?
            }
        };
        self.commit(n);
        Ok(n)
    }

    /// Writes once at most `limit` bytes of data to `sink` and consumes what was written.
    pub fn write_to<W: Write + ?Sized>(&mut self, sink: &mut W, limit: usize) -> io::Result<usize> {
        let limit = limit.min(self.len);
        if limit == 0 {
            return Ok(0);
        }
        let n = {
            let (a, b) = self.data();
            if a.len() >= limit {
                sink.write(&a[..limit])?
            } else {
                let b = &b[..limit - a.len()];
                sink.write_vectored(&[IoSlice::new(a), IoSlice::new(b)])?
            }
        };
        self.consume(n);
        Ok(n)
    }

    /// Moves data into `to` through `step`, a codec that takes an input slice and an output
    /// window and answers (bytes consumed, bytes written), as far as both buffers allow, across
    /// the wrap of either; stops when `step` moves nothing. Returns whether anything moved.
    pub fn pump_into(
        &mut self,
        to: &mut RingBuffer,
        mut step: impl FnMut(&[u8], &mut [u8]) -> (usize, usize),
    ) -> bool {
        let mut progress = false;
        while !self.is_empty() && !to.is_full() {
            let (used, written) = step(self.data().0, to.space().0);
            self.consume(used);
            to.commit(written);
            if used == 0 && written == 0 {
                break;
            }
            progress = true;
        }
        progress
    }
}

impl std::fmt::Debug for RingBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingBuffer")
            .field("capacity", &self.capacity())
            .field("head", &self.head)
            .field("len", &self.len)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contents(b: &RingBuffer) -> Vec<u8> {
        let (x, y) = b.data();
        [x, y].concat()
    }

    #[test]
    fn pump_into_crosses_both_wraps_and_stops_with_the_step() {
        // Upper-casing three bytes at most a step, between buffers whose wraps fall mid-way.
        let (mut from, mut to) = (RingBuffer::new(5), RingBuffer::new(4));
        from.push(b"xxx");
        from.consume(3);
        to.push(b"yy");
        to.consume(2);
        assert_eq!(from.push(b"abcde"), 5);
        let upper = |i: &[u8], o: &mut [u8]| {
            let n = i.len().min(o.len()).min(3);
            o[..n].copy_from_slice(&i[..n].to_ascii_uppercase());
            (n, n)
        };
        assert!(from.pump_into(&mut to, upper));
        assert_eq!(
            (contents(&to), contents(&from)),
            (b"ABCD".to_vec(), b"e".to_vec())
        );
        assert!(!from.pump_into(&mut to, upper), "full: nothing moves");
        to.consume(4);
        assert!(
            !from.pump_into(&mut to, |_, _| (0, 0)),
            "a step that moves nothing ends it"
        );
        assert!(from.pump_into(&mut to, upper));
        assert_eq!(contents(&to), b"E");
    }

    #[test]
    fn cursors_reset_when_empty() {
        let mut b = RingBuffer::new(8);
        assert_eq!(b.push(b"abcde"), 5);
        b.consume(5);
        assert!(b.is_empty());
        // Emptied: the whole capacity is one contiguous slice again.
        assert_eq!(b.space().0.len(), 8);
        assert_eq!(b.space().1.len(), 0);
    }

    #[test]
    fn wraps_and_keeps_order() {
        let mut b = RingBuffer::new(8);
        assert_eq!(b.push(b"abcdef"), 6);
        b.consume(4);
        assert_eq!(b.push(b"ghijklmn"), 6, "only the free space is taken");
        assert!(b.is_full());
        assert_eq!(contents(&b), b"efghijkl");
        let (x, y) = b.data();
        assert_eq!((x, y), (&b"efgh"[..], &b"ijkl"[..]));
        assert_eq!(b.find(b'j'), Some(5));
        assert_eq!(b.get(7), b'l');
        let mut out = [0u8; 6];
        b.peek_into(&mut out);
        assert_eq!(&out, b"efghij");
    }

    #[test]
    fn space_in_fill_order() {
        let mut b = RingBuffer::new(8);
        b.push(b"abcdef");
        b.consume(3); // data "def" at 3..6
        let (x, y) = b.space();
        assert_eq!((x.len(), y.len()), (2, 3));
        b.push(b"12345");
        assert_eq!(contents(&b), b"def12345");
    }

    #[test]
    fn vectored_io_across_the_wrap() {
        let mut b = RingBuffer::new(8);
        b.push(b"xxxxxx");
        b.consume(6);
        b.push(b"zz"); // not empty, so head stays at 6: free space wraps
        let mut src: &[u8] = b"0123456789";
        let n = b.read_from(&mut src).unwrap();
        assert_eq!(n, 6);
        assert_eq!(contents(&b), b"zz012345");
        let mut sink = Vec::new();
        assert_eq!(b.write_to(&mut sink, 5).unwrap(), 5);
        assert_eq!(sink, b"zz012");
        assert_eq!(b.write_to(&mut sink, usize::MAX).unwrap(), 3);
        assert_eq!(sink, b"zz012345");
        assert!(b.is_empty());
    }

    #[test]
    fn full_buffer_reads_nothing() {
        let mut b = RingBuffer::new(2);
        b.push(b"ab");
        let mut src: &[u8] = b"c";
        assert_eq!(b.read_from(&mut src).unwrap(), 0);
        assert_eq!(src, b"c");
    }

    #[test]
    fn every_split_keeps_a_stream_intact() {
        // Push a stream through a small buffer in chunks of every size; what comes out is
        // what went in.
        let input: Vec<u8> = (0..200u32).map(|i| (i * 7 % 251) as u8).collect();
        for chunk in 1..=9 {
            let mut b = RingBuffer::new(7);
            let mut out = Vec::new();
            let mut rest = &input[..];
            while !rest.is_empty() || !b.is_empty() {
                let n = b.push(&rest[..chunk.min(rest.len())]);
                rest = &rest[n..];
                b.write_to(&mut out, 3).unwrap();
            }
            assert_eq!(out, input, "chunk {chunk}");
        }
    }

    #[test]
    fn storage_is_touched_only_as_used() {
        let mut b = RingBuffer::new(64 * 1024);
        assert_eq!(b.initialised(), 0);
        let mut src: &[u8] = &[7u8; 100_000];
        assert_eq!(b.read_offer(), GROW);
        assert_eq!(
            b.read_from(&mut src).unwrap(),
            GROW,
            "a read reaches GROW past the initialised part"
        );
        assert_eq!(b.initialised(), GROW);
        b.push(b"abc");
        assert_eq!(b.initialised(), GROW + 3, "push initialises what it writes");
        let mut sink = Vec::new();
        b.write_to(&mut sink, usize::MAX).unwrap();
        assert!(b.is_empty());
        // Emptied: the next read starts at 0 and may fill what is initialised plus GROW.
        assert_eq!(b.read_offer(), GROW + 3 + GROW);
        while !b.is_full() {
            b.read_from(&mut src).unwrap();
        }
        assert_eq!(b.initialised(), 64 * 1024);
        assert_eq!(b.len(), 64 * 1024);
    }

    #[test]
    fn limited_space_never_skips_ahead() {
        // Data at 3..6, write cursor at 6, storage initialised to 6: a read is offered
        // 6..6+GROW only, never the part before the read cursor (that would be out of order).
        let mut b = RingBuffer::new(3 * GROW);
        b.push(b"abcdef");
        b.consume(3);
        assert_eq!(b.read_offer(), GROW);
        let (x, y) = b.space_upto(usize::MAX);
        assert_eq!(
            (x.len(), y.len()),
            (3 * GROW - 6, 3),
            "space() offers everything"
        );
    }

    #[test]
    #[should_panic]
    fn consume_past_data_panics() {
        RingBuffer::new(4).consume(1);
    }
}
