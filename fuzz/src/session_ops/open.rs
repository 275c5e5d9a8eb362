//! Opening a record in `session_ops`, and the checks on every result:
//! what must open opens to exactly what was sealed, what must not never
//! does, and the nonce and the closed/failed state follow the model.

use akex::error::{Error, PeerMisbehaved};
use akex::session::{ControlType, Record, RecordMode};

use super::model::{Expect, State};
use super::op::Side;
use super::run::{Peer, Run};

impl Run {
    /// Delivers a copy of record `at` that is out of order, replayed or
    /// tampered: a stream must refuse it; a datagram may accept a
    /// reordered one once.
    pub(super) fn open_copy(&mut self, to: Side, at: usize, bytes: Vec<u8>, tampered: bool) {
        let must = if self.datagram && !tampered {
            None
        } else {
            Some(false)
        };
        self.open(to, if tampered { None } else { Some(at) }, &bytes, must);
    }

    /// Opens `bytes` at `to`. `at` is the record it is a faithful copy of;
    /// `must_open` is the model's verdict for streams (`None`: datagram
    /// rules apply).
    pub(super) fn open(
        &mut self,
        to: Side,
        at: Option<usize>,
        bytes: &[u8],
        must_open: Option<bool>,
    ) {
        let i = to.index();
        let mut out = Vec::new();
        let (result, nonce_before, nonce_after) = match &mut self.peers[i] {
            Peer::Stream(s) if s.mode() == RecordMode::Noise => {
                let n = s.receiving().nonce();
                let r = s.open(bytes, &mut out);
                (r, n, s.receiving().nonce())
            }
            Peer::Stream(s) => (s.open_record(bytes, &mut out), 0, 0),
            Peer::Datagram(d) => {
                let epoch_before = d.recv_epoch();
                let failed_before = d.has_failed();
                let r = d.open(bytes, &mut out);
                // Datagram "must open": a faithful first delivery of a
                // record in the receiver's current epoch.
                if let (Some(at), Err(e)) = (at, &r) {
                    let item = &self.flights[i].items[at];
                    let header_epoch = (
                        u32::from_be_bytes(bytes[0..4].try_into().expect("4")),
                        u32::from_be_bytes(bytes[4..8].try_into().expect("4")),
                    );
                    let current = (epoch_before.generation, epoch_before.update);
                    assert!(
                        item.accepted
                            || failed_before
                            || header_epoch != current
                            || matches!(e, Error::Limit(_)),
                        "a fresh datagram of the current epoch failed: {e:?}"
                    );
                }
                if let Err(e) = &r {
                    if !failed_before
                        && matches!(
                            e,
                            Error::PeerMisbehaved(
                                PeerMisbehaved::DecryptFailed
                                    | PeerMisbehaved::Replayed
                                    | PeerMisbehaved::TooOld
                                    | PeerMisbehaved::BadMessageLength
                            )
                        )
                    {
                        assert!(
                            !d.has_failed(),
                            "an unauthenticated datagram closed the session: {e:?}"
                        );
                    }
                }
                (r, 0, 0)
            }
        };
        let noise = !self.datagram && self.mode == RecordMode::Noise;
        match result {
            Ok(record) => {
                self.progress.records += 1;
                self.progress.answered = true;
                assert_ne!(must_open, Some(false), "a bad copy opened: {record:?}");
                let at = at.expect("only faithful copies can open");
                let item = &mut self.flights[i].items[at];
                assert!(!item.accepted, "a record opened twice");
                if self.datagram {
                    item.accepted = true;
                    item.state = State::Consumed;
                }
                if noise {
                    assert_eq!(nonce_after, nonce_before + 1);
                }
                match (&item.expect, record) {
                    (Expect::Data(data), Record::Data(len)) => {
                        assert_eq!(len, data.len());
                        assert_eq!(&out, data, "opened to different bytes");
                    }
                    (Expect::Control, Record::KeyUpdate | Record::Ratchet) => {}
                    (Expect::Message(data), Record::Control(ty, len)) => {
                        assert_eq!(ty, ControlType::RotationAnnouncement);
                        assert_eq!(len, data.len());
                        // A control payload never comes out as data.
                        if self.datagram {
                            assert!(out.is_empty(), "a control payload came out as data");
                        } else {
                            assert_eq!(&out, data);
                        }
                    }
                    (Expect::Close, Record::Close) => {
                        self.models[i].received_close = true;
                        self.progress.finished = true;
                    }
                    (expect, got) => panic!("expected {expect:?}, opened {got:?}"),
                }
            }
            Err(e) => {
                assert_ne!(must_open, Some(true), "an in-order record failed: {e:?}");
                if noise {
                    assert_eq!(nonce_after, nonce_before, "a failed open moved the nonce");
                }
                if self.akex_stream() {
                    // Every akex-mode error is final.
                    self.models[i].failed = true;
                } else {
                    self.sync_failed(to);
                }
            }
        }
        if self.akex_stream() {
            let Peer::Stream(s) = &self.peers[i] else {
                unreachable!()
            };
            let m = self.models[i];
            assert_eq!(s.has_failed(), m.failed, "has_failed disagrees");
            assert_eq!(s.peer_closed(), m.received_close, "peer_closed disagrees");
            assert_eq!(
                s.is_closed(),
                m.failed || m.sent_close || m.received_close,
                "is_closed disagrees"
            );
        }
    }
}
