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
//! frame, modulo 5, says what to do with the rest:
//!
//! * 0: the rest is a raw record (ciphertext) for `open_record_in_place`;
//! * 1: the rest is an inner plaintext, sealed under the peer's current
//!   key and nonce, then opened;
//! * 2: the session starts a DH ratchet step (its randomness is fixed, so
//!   the harness knows its ratchet keys);
//! * 3: the session's clock moves on by the next byte in seconds, and it
//!   seals whatever control records are due (a ratchet response, say);
//! * 4: the harness seals the ratchet record the peer owes, with the right
//!   key confirmation (a response to the session's init, or the finish
//!   after the session's response), then opens it.
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
use akex::hazmat::hash::sha256;
use akex::hazmat::kem;
use akex::hazmat::x25519::X25519Private;
use akex::hazmat::ReplayRng as ScriptedRng;
use akex::hazmat::{schedule, CipherState};
use akex::keys::MlKem768KeyPair;
use akex::session::{AeadLimits, Record, RecordMode, SessionConfig};
use akex::{Role, Session};

use super::session_ops::{fixed_established, rng_bytes, HANDSHAKE_HASH, I2R, ROOT};
use super::{push_frame, Frames, Progress, Seed};

/// The peer's ratchet key pair in the steps it answers (and its ML-KEM
/// encapsulation randomness).
const PEER_RATCHET: [u8; 32] = [0x44; 32];
const PEER_KEM_M: [u8; 32] = [0x46; 32];

/// Where the session's side of a DH ratchet step is, as the harness sees it.
enum Ratchet {
    Idle,
    /// The session started a step with these keys and this init.
    Initiated {
        private: X25519Private,
        kem: Option<MlKem768KeyPair>,
        fields: Vec<u8>,
    },
    /// The session accepted the peer's init (its public fields); its
    /// `poll_control` answers.
    Received {
        fields: Vec<u8>,
        ek: Vec<u8>,
    },
    /// The session answered; the peer's finish switches it to `recv`.
    Responded {
        recv: Secret<32>,
        confirm_finish: Secret<32>,
    },
}

/// `x ‖ len (u16 BE) ‖ kem`: a ratchet message's public fields.
fn fields(public: &[u8], kem: &[u8]) -> Vec<u8> {
    let mut out = public.to_vec();
    out.extend_from_slice(&(kem.len() as u16).to_be_bytes());
    out.extend_from_slice(kem);
    out
}

/// `type 0x03 ‖ generation ‖ step ‖ rest`.
fn ratchet_record(generation: u32, step: u8, rest: &[u8]) -> Vec<u8> {
    let mut out = vec![0x03];
    out.extend_from_slice(&generation.to_be_bytes());
    out.push(step);
    out.extend_from_slice(rest);
    out
}

/// The transcript hash of a step (protocols/session.md): the session's
/// handshake hash, the generation, who started (0x01 handshake initiator,
/// 0x02 responder), both messages' public fields.
fn transcript(generation: u32, starter: u8, init: &[u8], response: &[u8]) -> [u8; 32] {
    sha256(&[
        &HANDSHAKE_HASH,
        &generation.to_be_bytes(),
        &[starter],
        init,
        response,
    ])
}

/// The harness's copy of the peer's sending side.
struct Mirror {
    aead: AeadAlgorithm,
    secret: Secret<32>,
    root: Secret<32>,
    epoch: u64,
    generation: u32,
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

    /// The ratchet record the peer owes: a response to the session's init
    /// or the finish after its response (with the right confirmation).
    fn owed(&self) -> Option<Vec<u8>> {
        let target = self.generation + 1;
        match &self.ratchet {
            Ratchet::Initiated {
                private,
                kem,
                fields: init,
                ..
            } => {
                let y = X25519Private::new(&Secret::new(PEER_RATCHET));
                let mut secrets = vec![y.agree(private.public()).ok()?];
                let ct = match kem {
                    Some(pair) => {
                        let (ct, ss) =
                            kem::encapsulate(pair.encapsulation_key(), &Secret::new(PEER_KEM_M))
                                .ok()?;
                        secrets.push(ss);
                        ct.to_vec()
                    }
                    None => Vec::new(),
                };
                let response = fields(y.public(), &ct);
                // The session is the handshake responder: it started.
                let th = transcript(target, 0x02, init, &response);
                let keys = schedule::ratchet(&self.root, &secrets.iter().collect::<Vec<_>>(), &th);
                let mut rest = response;
                rest.extend_from_slice(keys.confirm_response.expose());
                Some(ratchet_record(target, 0x02, &rest))
            }
            Ratchet::Responded { confirm_finish, .. } => {
                Some(ratchet_record(target, 0x03, confirm_finish.expose()))
            }
            _ => None,
        }
    }

    /// Follows what an accepted record with plaintext `inner` did to the
    /// session's receiving key.
    fn accepted(&mut self, inner: &[u8]) {
        let target = self.generation + 1;
        match inner {
            [0x02] => self.install(schedule::next_traffic_secret(&self.secret)),
            [0x03, g0, g1, g2, g3, 0x01, rest @ ..] => {
                assert_eq!(u32::from_be_bytes([*g0, *g1, *g2, *g3]), target);
                let ek = rest[34..].to_vec();
                self.ratchet = Ratchet::Received {
                    fields: rest.to_vec(),
                    ek,
                };
            }
            [0x03, _, _, _, _, 0x02, rest @ ..] => {
                let Ratchet::Initiated {
                    private,
                    kem,
                    fields: init,
                } = std::mem::replace(&mut self.ratchet, Ratchet::Idle)
                else {
                    panic!("a ratchet response was accepted with no step in progress");
                };
                let y = &rest[..32];
                let mut secrets = vec![private.agree(y).expect("the session accepted the key")];
                let response = &rest[..rest.len() - 32];
                if let Some(pair) = kem {
                    secrets.push(
                        pair.decapsulate(&response[34..])
                            .expect("the session decapsulated"),
                    );
                }
                let th = transcript(target, 0x02, &init, response);
                let keys = schedule::ratchet(&self.root, &secrets.iter().collect::<Vec<_>>(), &th);
                assert_eq!(keys.confirm_response.expose(), &rest[rest.len() - 32..]);
                self.root = keys.root;
                // The session is the handshake responder: it receives i2r.
                self.install(keys.initiator_to_responder);
            }
            [0x03, _, _, _, _, 0x03, ..] => {
                let Ratchet::Responded { recv, .. } =
                    std::mem::replace(&mut self.ratchet, Ratchet::Idle)
                else {
                    panic!("a ratchet finish was accepted with no response sent");
                };
                self.generation += 1;
                self.install(recv);
            }
            _ => {}
        }
    }

    /// The session sealed a control record with randomness `bytes`.
    fn polled(&mut self, bytes: &[u8]) {
        if !matches!(self.ratchet, Ratchet::Received { .. }) {
            // Some other control record (a key update of its sending side).
            return;
        }
        let Ratchet::Received { fields: init, ek } =
            std::mem::replace(&mut self.ratchet, Ratchet::Idle)
        else {
            unreachable!("checked above")
        };
        let target = self.generation + 1;
        let y = X25519Private::new(&Secret::from_slice(&bytes[..32]).expect("32"));
        let mut secrets = vec![y.agree(&init[..32]).expect("the session accepted the key")];
        let ct = if ek.is_empty() {
            Vec::new()
        } else {
            let m = Secret::from_slice(&bytes[32..64]).expect("32");
            let (ct, ss) = kem::encapsulate(&ek, &m).expect("the session accepted the key");
            secrets.push(ss);
            ct.to_vec()
        };
        // The peer (the handshake initiator) started this step.
        let th = transcript(target, 0x01, &init, &fields(y.public(), &ct));
        let keys = schedule::ratchet(&self.root, &secrets.iter().collect::<Vec<_>>(), &th);
        self.root = keys.root;
        self.ratchet = Ratchet::Responded {
            recv: keys.initiator_to_responder,
            confirm_finish: keys.confirm_finish,
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
        generation: 0,
        ratchet: Ratchet::Idle,
    };
    let mut now = Duration::ZERO;
    let mut rng_calls = 0u32;
    let mut sink = Vec::new();

    for frame in Frames::new(rest) {
        let (kind, body) = match frame.split_first() {
            Some((&k, body)) => (k % 5, body),
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
                        let private =
                            X25519Private::new(&Secret::from_slice(&bytes[..32]).expect("32"));
                        let kem = hybrid.then(|| {
                            MlKem768KeyPair::from_seed(
                                &Secret::from_slice(&bytes[32..96]).expect("64"),
                            )
                        });
                        let ek: &[u8] = kem.as_ref().map_or(&[], |k| &k.encapsulation_key()[..]);
                        let init = fields(private.public(), ek);
                        mirror.ratchet = Ratchet::Initiated {
                            private,
                            kem,
                            fields: init,
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
                        Ok(true) => mirror.polled(&bytes),
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
        let owed = if kind == 4 {
            match mirror.owed() {
                Some(inner) => Some(inner),
                None => continue,
            }
        } else {
            None
        };
        let sealed = kind == 1 || kind == 4;
        let mut buf = match (&owed, sealed) {
            (Some(inner), _) => mirror.seal(session.receiving().nonce(), inner),
            (None, true) => mirror.seal(session.receiving().nonce(), body),
            (None, false) => body.to_vec(),
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
                    Record::Control(_, n) => assert_eq!(n + 3, inner.len()),
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
/// the peer starts; one the session starts; an unknown type and an
/// unknown control type; a raw record.
pub fn akex_record_seeds() -> Vec<Seed> {
    let peer_public = *X25519Private::new(&Secret::new([0x45; 32])).public();
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
        sealed(&mut data, b"\x05\x00\x01[]");
        sealed(&mut data, &[0x04]);
        seeds.push(seed("update-control-close", data, done(5)));

        // The peer starts a ratchet step: init, the session answers, the
        // harness's finish (kind 4), data.
        let ek: &[u8] = if hybrid {
            peer_kem.encapsulation_key()
        } else {
            &[]
        };
        let init = ratchet_record(1, 0x01, &fields(&peer_public, ek));
        let mut data = vec![selector];
        sealed(&mut data, &init);
        push_frame(&mut data, &[3, 0]);
        push_frame(&mut data, &[4]);
        sealed(&mut data, b"\x01after the ratchet");
        seeds.push(seed("peer-ratchet", data, done(3)));

        // The session starts one: the harness's response (kind 4), the
        // session's finish, data.
        let mut data = vec![selector];
        push_frame(&mut data, &[2]);
        push_frame(&mut data, &[4]);
        push_frame(&mut data, &[3, 0]);
        sealed(&mut data, b"\x01after our ratchet");
        seeds.push(seed("own-ratchet", data, done(2)));

        // A response whose confirmation is wrong ends the session.
        let mut response = fields(
            &peer_public,
            &if hybrid {
                vec![0x5c; kem::CIPHERTEXT_LEN]
            } else {
                Vec::new()
            },
        );
        response.extend_from_slice(&[0u8; 32]);
        let mut data = vec![selector];
        push_frame(&mut data, &[2]);
        sealed(&mut data, &ratchet_record(1, 0x02, &response));
        seeds.push(seed(
            "bad-confirmation",
            data,
            Progress {
                answered: false,
                finished: false,
                records: 0,
            },
        ));

        // An unknown record type, or control type, ends the session.
        for (name, inner) in [
            ("unknown-type", &b"\x7fwhat"[..]),
            ("unknown-control", b"\x05\x12\x34x"),
        ] {
            let mut data = vec![selector];
            sealed(&mut data, b"\x01x");
            sealed(&mut data, inner);
            sealed(&mut data, b"\x01never read");
            seeds.push(seed(
                name,
                data,
                Progress {
                    answered: true,
                    finished: false,
                    records: 1,
                },
            ));
        }
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
