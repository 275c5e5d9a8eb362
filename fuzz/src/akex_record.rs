//! Fuzz target `akex_record`: the akex-mode record layer of an established
//! session (the responder side), fed records whose *plaintext* the fuzzer
//! chooses.
//!
//! The harness plays the peer with its own copy of the peer's sending key:
//! the session is built from fixed secrets ([`super::session_ops`]'s
//! `fixed_established`), so the harness seals any inner plaintext (type
//! byte and body) with `CipherState` under the key the session expects,
//! and the record gets past the AEAD into the record parser (type byte,
//! key update, ratchet init/response/finish with their X25519 and ML-KEM
//! fields, close). The library has no public call that seals a raw type
//! byte, so the harness does it with the public `CipherState`, the key
//! schedule (`session::schedule`) and the crypto primitives.
//!
//! Input: a selector byte (bit 0: AESGCM instead of ChaChaPoly; bit 1:
//! hybrid ML-KEM ratchet; bit 2: usage limits lowered to 12 records), then
//! frames (2-byte big-endian length, then the bytes). The first byte of a
//! frame, modulo 4, says what to do with the rest:
//!
//! * 0: the rest is a raw record (ciphertext) for `open_record_in_place`;
//! * 1: the rest is an inner plaintext, sealed under the peer's current
//!   key and nonce, then opened;
//! * 2: the session starts a DH ratchet step (its randomness is fixed, so
//!   the harness knows its ratchet keys);
//! * 3: the session's clock moves on by the next byte in seconds, and it
//!   seals whatever control records are due (a ratchet response, say).
//!
//! The harness follows every key change the session makes on its
//! receiving side (key updates, ratchet responses and finishes it accepts)
//! and checks that it agrees: the session's receiving epoch equals the
//! harness's, and a record the harness sealed never fails authentication.
//! Any error closes the session for good (akex mode); the run stops there.

use std::time::Duration;

use akex::crypto::{AeadAlgorithm, Secret};
use akex::error::{Error, PeerMisbehaved};
use akex::hazmat::aead::TAG_LEN;
use akex::hazmat::kem;
use akex::hazmat::x25519::X25519Private;
use akex::hazmat::ReplayRng as ScriptedRng;
use akex::hazmat::{schedule, CipherState};
use akex::keys::MlKem768KeyPair;
use akex::session::{AeadLimits, Record, RecordMode, SessionConfig};
use akex::{Role, Session};

use super::session_ops::{fixed_established, rng_bytes, I2R, ROOT};
use super::{push_frame, Frames, Progress, Seed};

/// Where the session's side of a DH ratchet step is, as the harness sees it.
enum Ratchet {
    Idle,
    /// The session started a step with these keys.
    Initiated {
        private: X25519Private,
        kem: Option<MlKem768KeyPair>,
    },
    /// The session accepted an init with these keys; `poll_control` answers.
    Received {
        public: Vec<u8>,
        kem: Vec<u8>,
    },
    /// The session answered; the peer's finish switches it to `recv`.
    Responded {
        recv: Secret<32>,
    },
}

/// The harness's copy of the peer's sending side.
struct Mirror {
    aead: AeadAlgorithm,
    secret: Secret<32>,
    root: Secret<32>,
    epoch: u64,
    ratchet: Ratchet,
}

impl Mirror {
    fn install(&mut self, secret: Secret<32>) {
        self.secret = secret;
        self.epoch += 1;
    }

    fn seal(&self, nonce: u64, inner: &[u8]) -> Vec<u8> {
        let key = schedule::record_key(&self.secret);
        let mut cipher = CipherState::new(self.aead, key.expose());
        cipher.set_nonce(nonce);
        let mut out = Vec::with_capacity(inner.len() + TAG_LEN);
        cipher
            .encrypt_append(&[], inner, &mut out)
            .expect("the nonce is below the reserved one");
        out
    }

    /// Follows what an accepted record with plaintext `inner` did to the
    /// session's receiving key.
    fn accepted(&mut self, inner: &[u8]) {
        match inner {
            [0x02] => self.install(schedule::next_traffic_secret(&self.secret)),
            [0x03, 0x01, rest @ ..] => {
                self.ratchet = Ratchet::Received {
                    public: rest[..32].to_vec(),
                    kem: rest[34..].to_vec(),
                };
            }
            [0x03, 0x02, rest @ ..] => {
                let Ratchet::Initiated { private, kem } =
                    std::mem::replace(&mut self.ratchet, Ratchet::Idle)
                else {
                    panic!("a ratchet response was accepted with no step in progress");
                };
                let dh = private
                    .agree(&rest[..32])
                    .expect("the session accepted the key");
                let ct = &rest[34..];
                let ss = kem.map(|pair| pair.decapsulate(ct).expect("the session decapsulated"));
                let keys = schedule::ratchet(&self.root, &dh, ss.as_ref());
                self.root = keys.root;
                // The session is the handshake responder: it receives i2r.
                self.install(keys.initiator_to_responder);
            }
            [0x03, 0x03] => {
                let Ratchet::Responded { recv } =
                    std::mem::replace(&mut self.ratchet, Ratchet::Idle)
                else {
                    panic!("a ratchet finish was accepted with no response sent");
                };
                self.install(recv);
            }
            _ => {}
        }
    }

    /// The session answered a ratchet init with randomness `bytes`.
    fn responded(&mut self, bytes: &[u8]) {
        if !matches!(self.ratchet, Ratchet::Received { .. }) {
            // Some other control record (a key update of its sending side).
            return;
        }
        let Ratchet::Received { public, kem } = std::mem::replace(&mut self.ratchet, Ratchet::Idle)
        else {
            unreachable!("checked above")
        };
        let private = X25519Private::new(&Secret::from_slice(&bytes[..32]).expect("32"));
        let dh = private
            .agree(&public)
            .expect("the session accepted the key");
        let ss = (!kem.is_empty()).then(|| {
            let m = Secret::from_slice(&bytes[32..64]).expect("32");
            kem::encapsulate(&kem, &m)
                .expect("the session accepted the key")
                .1
        });
        let keys = schedule::ratchet(&self.root, &dh, ss.as_ref());
        self.root = keys.root;
        self.ratchet = Ratchet::Responded {
            recv: keys.initiator_to_responder,
        };
    }
}

/// Runs the fuzz target `akex_record` (see the module docs). `answered`:
/// a sealed record was accepted; `finished`: the receiving key changed
/// (key update or ratchet) and the harness followed; `records`: records
/// accepted.
pub fn akex_record(data: &[u8]) -> Progress {
    let mut progress = Progress::default();
    let Some((&selector, rest)) = data.split_first() else {
        return progress;
    };
    let aead = if selector & 1 == 0 {
        AeadAlgorithm::ChaChaPoly
    } else {
        AeadAlgorithm::AesGcm
    };
    let hybrid = selector & 2 != 0;
    let limits = (selector & 4 != 0).then_some(AeadLimits {
        max_records: 12,
        max_bytes: 1 << 20,
        max_forgeries: 4,
    });
    let mut config = SessionConfig::new().hybrid_ratchet(hybrid);
    config.limits = limits;
    let mut session = Session::with_config(
        fixed_established(Role::Responder, aead, true, RecordMode::Akex),
        config,
    )
    .expect("the fixed configuration is valid");
    let mut mirror = Mirror {
        aead,
        secret: Secret::new(I2R),
        root: Secret::new(ROOT),
        epoch: 0,
        ratchet: Ratchet::Idle,
    };
    let mut now = Duration::ZERO;
    let mut rng_calls = 0u32;
    let mut sink = Vec::new();

    for frame in Frames::new(rest) {
        let (kind, body) = match frame.split_first() {
            Some((&k, body)) => (k % 4, body),
            None => (0, frame),
        };
        match kind {
            2 => {
                rng_calls += 1;
                let bytes = rng_bytes(rng_calls);
                let mut rng = ScriptedRng::new(bytes.clone());
                sink.clear();
                match session.start_ratchet(&mut rng, &mut sink) {
                    Ok(true) => {
                        mirror.ratchet = Ratchet::Initiated {
                            private: X25519Private::new(
                                &Secret::from_slice(&bytes[..32]).expect("32"),
                            ),
                            kem: hybrid.then(|| {
                                MlKem768KeyPair::from_seed(
                                    &Secret::from_slice(&bytes[32..96]).expect("64"),
                                )
                            }),
                        };
                    }
                    Ok(false) => {}
                    Err(_) => return progress,
                }
                continue;
            }
            3 => {
                now += Duration::from_secs(u64::from(body.first().copied().unwrap_or(0)));
                for _ in 0..4 {
                    rng_calls += 1;
                    let bytes = rng_bytes(rng_calls);
                    let mut rng = ScriptedRng::new(bytes.clone());
                    sink.clear();
                    match session.poll_control(now, &mut rng, &mut sink) {
                        Ok(true) => mirror.responded(&bytes),
                        Ok(false) => break,
                        Err(_) => {
                            assert!(session.is_closed());
                            return progress;
                        }
                    }
                }
                continue;
            }
            _ => {}
        }
        let sealed = kind == 1;
        let mut buf = if sealed {
            mirror.seal(session.receiving().nonce(), body)
        } else {
            body.to_vec()
        };
        let len = buf.len();
        match session.open_record_in_place(&mut buf) {
            Ok(record) => {
                let inner = &buf[..len - TAG_LEN];
                match record {
                    Record::Data(n) => assert_eq!(n + 1, inner.len()),
                    Record::KeyUpdate => assert_eq!(inner, [0x02]),
                    Record::Ratchet => assert_eq!(inner[0], 0x03),
                    Record::Close => assert_eq!(inner, [0x04]),
                    other => panic!("a record type the harness does not know: {other:?}"),
                }
                progress.records += 1;
                progress.answered |= sealed;
                mirror.accepted(inner);
                assert_eq!(
                    session.recv_epoch(),
                    mirror.epoch,
                    "the session's receiving key moved differently"
                );
                progress.finished |= mirror.epoch > 0;
            }
            Err(e) => {
                if sealed {
                    assert!(
                        !matches!(e, Error::PeerMisbehaved(PeerMisbehaved::DecryptFailed)),
                        "a record sealed under the expected key failed to authenticate"
                    );
                }
                assert!(session.has_failed(), "an akex-mode error must be final");
                let mut again = buf.clone();
                assert!(session.open_record_in_place(&mut again).is_err());
                return progress;
            }
        }
    }
    progress
}

/// A sealed frame: kind 1, then the inner plaintext.
fn sealed(out: &mut Vec<u8>, inner: &[u8]) {
    let mut frame = vec![1];
    frame.extend_from_slice(inner);
    push_frame(out, &frame);
}

/// Seeds for `akex_record`: data, a key update and a close; a ratchet step
/// the peer starts; one the session starts; an unknown type; a raw record.
pub fn akex_record_seeds() -> Vec<Seed> {
    let peer_public = *X25519Private::new(&Secret::new([0x44; 32])).public();
    let peer_kem = MlKem768KeyPair::from_seed(&Secret::new([0x45; 64]));
    let mut seeds = Vec::new();
    for (selector, short) in [(0u8, "chachapoly"), (1, "aesgcm"), (3, "aesgcm-hybrid")] {
        let hybrid = selector & 2 != 0;
        let seed = |name: &str, data: Vec<u8>, expect: Progress| Seed {
            name: super::leak(format!("{short}-{name}")),
            data,
            expect,
        };
        let done = |records| Progress {
            answered: true,
            finished: true,
            records,
        };

        let mut data = vec![selector];
        sealed(&mut data, b"\x01hello");
        sealed(&mut data, &[0x02]);
        sealed(&mut data, b"\x01after the key update");
        sealed(&mut data, &[0x04]);
        seeds.push(seed("update-close", data, done(4)));

        // The peer starts a ratchet step: init, the session answers, finish.
        let mut init = vec![0x03, 0x01];
        init.extend_from_slice(&peer_public);
        let ek: &[u8] = if hybrid {
            peer_kem.encapsulation_key()
        } else {
            &[]
        };
        init.extend_from_slice(&(ek.len() as u16).to_be_bytes());
        init.extend_from_slice(ek);
        let mut data = vec![selector];
        sealed(&mut data, &init);
        push_frame(&mut data, &[3, 0]);
        sealed(&mut data, &[0x03, 0x03]);
        sealed(&mut data, b"\x01after the ratchet");
        seeds.push(seed("peer-ratchet", data, done(3)));

        // The session starts one: the peer's response, then data.
        let mut response = vec![0x03, 0x02];
        response.extend_from_slice(&peer_public);
        let ct = if hybrid {
            vec![0x5c; kem::CIPHERTEXT_LEN]
        } else {
            Vec::new()
        };
        response.extend_from_slice(&(ct.len() as u16).to_be_bytes());
        response.extend_from_slice(&ct);
        let mut data = vec![selector];
        push_frame(&mut data, &[2]);
        sealed(&mut data, &response);
        push_frame(&mut data, &[3, 0]);
        sealed(&mut data, b"\x01after our ratchet");
        seeds.push(seed("own-ratchet", data, done(2)));

        // An unknown record type ends the session.
        let mut data = vec![selector];
        sealed(&mut data, b"\x01x");
        sealed(&mut data, b"\x7fwhat");
        sealed(&mut data, b"\x01never read");
        seeds.push(seed(
            "unknown-type",
            data,
            Progress {
                answered: true,
                finished: false,
                records: 1,
            },
        ));
    }
    // A raw (forged) record, and a key update with a body.
    let mut data = vec![0];
    let mut raw = vec![0];
    raw.extend_from_slice(&[0xa5; 40]);
    push_frame(&mut data, &raw);
    seeds.push(Seed {
        name: "chachapoly-raw-forged",
        data,
        expect: Progress::default(),
    });
    let mut data = vec![4];
    sealed(&mut data, &[0x02, 0x00]);
    seeds.push(Seed {
        name: "chachapoly-limited-bad-key-update",
        data,
        expect: Progress::default(),
    });
    seeds
}
