//! Length-prefixed frames: `u32` big-endian length, then that many bytes.
//! The length does not count its own 4 bytes (Mojaloop sidecar format).

use bytes::{Buf, Bytes, BytesMut};

/// Why the byte stream cannot be framed any further.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The length prefix is over the limit: the stream cannot be resynced,
    /// so the connection must close after saying so.
    #[error("frame of {len} bytes is over the limit of {max} bytes")]
    TooLarge {
        /// The announced length.
        len: u64,
        /// The limit.
        max: usize,
    },
}

/// Splits a byte stream into frames.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    max: usize,
}

impl FrameDecoder {
    /// A decoder refusing frames longer than `max` bytes.
    pub fn new(max: usize) -> Self {
        Self { max }
    }

    /// The next whole frame in `buf` (consumed), `None` when more bytes are
    /// needed. A zero-length frame is returned as an empty payload.
    ///
    /// # Errors
    /// [`FrameError::TooLarge`] as soon as the prefix is read; nothing after
    /// it can be trusted.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        let Some(prefix) = buf.get(..4) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
        if len > self.max {
            return Err(FrameError::TooLarge {
                len: len as u64,
                max: self.max,
            });
        }
        if buf.len() < 4 + len {
            buf.reserve(4 + len - buf.len());
            return Ok(None);
        }
        buf.advance(4);
        Ok(Some(buf.split_to(len).freeze()))
    }
}

/// Encodes one frame.
pub fn encode(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn partial_whole_and_oversized() {
        let mut d = FrameDecoder::new(10);
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&[0, 0, 0]);
        assert_eq!(d.decode(&mut buf), Ok(None));
        buf.extend_from_slice(&[3, b'a']);
        assert_eq!(d.decode(&mut buf), Ok(None), "half a frame waits");
        buf.extend_from_slice(b"bc");
        buf.extend_from_slice(&encode(b""));
        assert_eq!(d.decode(&mut buf), Ok(Some(Bytes::from_static(b"abc"))));
        assert_eq!(
            d.decode(&mut buf),
            Ok(Some(Bytes::new())),
            "zero-length frame"
        );
        buf.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
        assert_eq!(
            d.decode(&mut buf),
            Err(FrameError::TooLarge {
                len: 4_294_967_295,
                max: 10
            })
        );
    }

    proptest! {
        #[test]
        fn any_split_of_frames_round_trips(
            payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..50), 0..20),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut wire = Vec::new();
            for p in &payloads {
                wire.extend_from_slice(&encode(p));
            }
            let at = if wire.is_empty() { 0 } else { cut.index(wire.len()) };
            let mut d = FrameDecoder::new(64);
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            for part in [&wire[..at], &wire[at..]] {
                buf.extend_from_slice(part);
                while let Some(f) = d.decode(&mut buf).expect("within limit") {
                    got.push(f.to_vec());
                }
            }
            prop_assert_eq!(got, payloads);
            prop_assert!(buf.is_empty());
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut d = FrameDecoder::new(100);
            let mut buf = BytesMut::from(&bytes[..]);
            while let Ok(Some(_)) = d.decode(&mut buf) {}
        }
    }
}
