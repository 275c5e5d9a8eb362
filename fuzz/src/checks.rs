//! The rules the handshake targets check: a handshake stays dead after an
//! error, a failed record leaves the nonce alone and an opened one strips
//! exactly the tag; `drive` applies them to any `Handshake`.

use akex::hazmat::aead::TAG_LEN;
use akex::{Handshake, NoiseHandshake, Session};

use super::Progress;

/// After an error the handshake must stay dead, not panic or recover.
pub(crate) fn assert_dead(hs: &mut NoiseHandshake) {
    let mut sink = Vec::new();
    assert!(hs.read_message(&[0u8; 48], &mut sink).is_err());
    assert!(hs.write_message(b"", &mut sink).is_err());
    assert!(!hs.is_finished());
}

/// Opens every remaining frame as a transport record, checking that a
/// failure leaves the nonce alone and a success strips exactly the tag.
pub(crate) fn open_records<'a>(
    session: &mut Session,
    frames: impl Iterator<Item = &'a [u8]>,
) -> usize {
    let mut opened = 0;
    let mut buf = Vec::new();
    for frame in frames {
        buf.clear();
        buf.extend_from_slice(frame);
        let nonce = session.receiving().nonce();
        if session.mode() == akex::RecordMode::Noise {
            match session.open_in_place(&mut buf) {
                Ok(n) => {
                    assert_eq!(n + TAG_LEN, frame.len());
                    assert_eq!(session.receiving().nonce(), nonce + 1);
                    opened += 1;
                }
                Err(_) => assert_eq!(session.receiving().nonce(), nonce),
            }
        } else {
            // akex mode: a type byte inside the AEAD; an error closes it.
            let mut out = Vec::new();
            match session.open(frame, &mut out) {
                Ok(akex::session::Record::Data(n)) => {
                    assert_eq!(n + 1 + TAG_LEN, frame.len());
                    assert_eq!(out.len(), n);
                    opened += 1;
                }
                Ok(_) => {}
                Err(_) => {
                    assert!(out.is_empty());
                    return opened;
                }
            }
        }
    }
    opened
}

/// After an error a handshake must stay unfinished (and not panic).
pub(crate) fn assert_dead_dyn(hs: &mut dyn Handshake) {
    let mut sink = Vec::new();
    let _ = hs.read_message(&[0u8; 48], &mut sink);
    let _ = hs.write_message(b"", &mut sink);
    assert!(!hs.is_finished(), "a failed handshake must not finish");
}

/// Drives `hs` with `frames` as the peer's messages, answering whenever it
/// wants to write. Fills in `answered` (wrote at least one message after
/// reading one) and `finished`.
pub(crate) fn drive<'a>(
    mut hs: Box<dyn Handshake>,
    mut frames: impl Iterator<Item = &'a [u8]>,
    progress: &mut Progress,
) {
    let (mut payload, mut out) = (Vec::new(), Vec::new());
    let mut read_any = false;
    while !hs.is_finished() {
        if hs.wants_write() {
            out.clear();
            if hs.write_message(b"", &mut out).is_err() {
                assert_dead_dyn(&mut *hs);
                return;
            }
            if read_any {
                progress.answered = true;
            }
            continue;
        }
        let Some(message) = frames.next() else {
            return;
        };
        payload.clear();
        if hs.read_message(message, &mut payload).is_err() {
            assert_dead_dyn(&mut *hs);
            return;
        }
        read_any = true;
    }
    let established = hs.finish().expect("a finished handshake yields its keys");
    progress.finished = true;
    let mut session = Session::new(established);
    progress.records = open_records(&mut session, frames);
}
