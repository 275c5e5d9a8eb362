//! Outbound frames: the 2-byte length prefix, records sealed in either
//! mode, and the control records a session has queued (key updates,
//! ratchet steps) written before the data that follows them.

use std::time::Duration;

use crate::crypto::{SharedRng, TAG_LEN};
use crate::error::{ApiMisuse, Error};
use crate::session::{RecordType, Session, Tail};

/// Appends one frame to `tx`: a 2-byte length, then what `write` appends.
/// On failure `tx` is left as it was.
pub(super) fn frame_with(
    tx: &mut Vec<u8>,
    write: impl FnOnce(&mut Vec<u8>) -> Result<(), Error>,
) -> Result<(), Error> {
    let start = tx.len();
    tx.extend_from_slice(&[0, 0]);
    let result = write(tx).and_then(|()| {
        u16::try_from(tx.len() - start - 2).map_err(|_| ApiMisuse::MessageTooLarge.into())
    });
    match result {
        Ok(len) => {
            tx[start..start + 2].copy_from_slice(&len.to_be_bytes());
            Ok(())
        }
        Err(e) => {
            tx.truncate(start);
            Err(e)
        }
    }
}

/// Noise mode: one transport message, sealed in place in `tx`.
pub(super) fn seal_noise(
    session: &mut Session,
    tx: &mut Vec<u8>,
    plaintext: &[u8],
) -> Result<(), Error> {
    frame_with(tx, |out| {
        let start = out.len();
        out.reserve(plaintext.len() + TAG_LEN);
        out.extend_from_slice(plaintext);
        session.seal_in_place(&mut Tail(out, start))
    })
}

/// akex mode: one data record, sealed in place in `tx`.
pub(super) fn seal_akex(
    session: &mut Session,
    tx: &mut Vec<u8>,
    plaintext: &[u8],
) -> Result<(), Error> {
    frame_with(tx, |out| {
        let start = out.len();
        out.reserve(1 + plaintext.len() + TAG_LEN);
        out.push(0); // the record type, set by the session
        out.extend_from_slice(plaintext);
        session.seal_record_in_place(RecordType::Data, &mut Tail(out, start))
    })
}

/// akex mode: every control record the session has due (key updates,
/// ratchet steps and answers), framed into `tx`.
pub(super) fn queue_control(
    session: &mut Session,
    now: Duration,
    rng: &mut SharedRng,
    tx: &mut Vec<u8>,
) -> Result<(), Error> {
    loop {
        let start = tx.len();
        tx.extend_from_slice(&[0, 0]);
        match session.poll_control(now, rng, tx) {
            Ok(true) => {
                // Control records are far below 65535 bytes.
                let len = (tx.len() - start - 2) as u16;
                tx[start..start + 2].copy_from_slice(&len.to_be_bytes());
            }
            Ok(false) => {
                tx.truncate(start);
                return Ok(());
            }
            Err(e) => {
                tx.truncate(start);
                return Err(e);
            }
        }
    }
}
