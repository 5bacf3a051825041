//! Length-prefixed frames, the wire format between Brig's processes (caller ↔ helper ↔ agent):
//! `[u32 little-endian length][u8 tag][payload]`, where the length counts the tag and payload.
//! Tags are per protocol; payloads are JSON for control messages and raw bytes for output.

use std::io::{self, Read, Write};

/// Largest frame accepted (a spec carries the program's files).
pub const MAX_FRAME: usize = 256 << 20;

/// One frame, encoded: the payload is the concatenation of `payload`'s parts.
pub fn encode(tag: u8, payload: &[&[u8]]) -> Vec<u8> {
    let len: usize = payload.iter().map(|p| p.len()).sum::<usize>() + 1;
    let mut frame = Vec::with_capacity(4 + len);
    frame.extend_from_slice(&(len as u32).to_le_bytes());
    frame.push(tag);
    for part in payload {
        frame.extend_from_slice(part);
    }
    frame
}

/// Writes one frame whose payload is the concatenation of `payload`'s parts.
pub fn write_frame(out: &mut impl Write, tag: u8, payload: &[&[u8]]) -> io::Result<()> {
    out.write_all(&encode(tag, payload))
}

/// Reads one frame: `None` at a clean end of stream.
pub fn read_frame(input: &mut impl Read) -> io::Result<Option<(u8, Vec<u8>)>> {
    let mut len = [0u8; 4];
    match input.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_le_bytes(len) as usize;
    if len == 0 || len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "bad frame length",
        ));
    }
    let mut body = vec![0u8; len];
    input.read_exact(&mut body)?;
    let tag = body.remove(0);
    Ok(Some((tag, body)))
}
