//! The hybrid and PQ-authenticated handshakes written again from
//! protocols/hybrid.md and pq.md on the hazmat primitives, with the
//! party's long-term secrets as callbacks. A test can then play a party it
//! does not fully hold (an attacker with someone else's key, or with only
//! one half of a PQ identity) and see every secret that enters the
//! chaining key. Run against the real implementation with the true
//! secrets, it must agree byte for byte (each test checks that first).

use akex::crypto::{AeadAlgorithm, OsRng, Secret};
use akex::handshake::TrafficSecret;
use akex::hazmat::akex::{hello, SymmetricState};
use akex::hazmat::kem;
use akex::hazmat::x25519::X25519Private;
use akex::keys::{MlKem768KeyPair, StaticSecret};
use akex::{Error, Handshake, Role};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Tok {
    E,
    E1,
    Ekem,
    Skem,
    S,
    Ee,
    Es,
    Se,
    Ss,
}
use Tok::*;

/// A pattern as the specs write it.
pub struct Pattern {
    pub family: &'static str,
    pub pre_responder: bool,
    pub kem_statics: bool,
    pub messages: &'static [&'static [Tok]],
}

pub fn pattern(name: &str) -> Pattern {
    let (family, pre, kem, messages): (_, _, _, &'static [&'static [Tok]]) = match name {
        n if n.starts_with("akex-hybrid-xx") => (
            "hybrid",
            false,
            false,
            &[&[E, E1], &[E, Ee, Ekem, S, Es], &[S, Se]],
        ),
        n if n.starts_with("akex-hybrid-ik") => (
            "hybrid",
            true,
            false,
            &[&[E, E1, Es, S, Ss], &[E, Ee, Ekem, Se]],
        ),
        n if n.starts_with("akex-hybrid-nk") => {
            ("hybrid", true, false, &[&[E, E1, Es], &[E, Ee, Ekem]])
        }
        n if n.starts_with("akex-pq-xx") => (
            "pq",
            false,
            true,
            &[&[E, E1], &[E, Ee, Ekem, S, Es], &[Skem, S, Se], &[Skem]],
        ),
        n if n.starts_with("akex-pq-ik") => (
            "pq",
            true,
            true,
            &[&[E, E1, Es, Skem, S, Ss], &[E, Ee, Ekem, Se, Skem]],
        ),
        _ => panic!("no pattern for {name}"),
    };
    Pattern {
        family,
        pre_responder: pre,
        kem_statics: kem,
        messages,
    }
}

/// X25519 of "our" static private key with a public key.
pub type StaticDh = Box<dyn Fn(&[u8; 32]) -> Secret<32>>;
/// Decapsulation with "our" static ML-KEM key.
pub type StaticDecaps = Box<dyn Fn(&[u8]) -> Secret<32>>;

/// A long-term identity as the forger uses it: the public halves it
/// claims, and what it can compute with "its" private halves.
pub struct Claim {
    pub x25519: [u8; 32],
    pub kem: Option<Vec<u8>>,
    pub dh: StaticDh,
    pub decaps: StaticDecaps,
}

fn x(key: &StaticSecret) -> X25519Private {
    X25519Private::new(key.private())
}

impl Claim {
    /// The true identity: every private half held.
    pub fn real(key: &StaticSecret, kem: Option<&MlKem768KeyPair>) -> Claim {
        let (k, m) = (key.clone(), kem.cloned());
        Claim {
            x25519: *key.public(),
            kem: kem.map(|k| k.encapsulation_key().to_vec()),
            dh: Box::new(move |p| x(&k).agree(p).expect("valid point")),
            decaps: Box::new(move |ct| m.as_ref().expect("a KEM key").decapsulate(ct).unwrap()),
        }
    }

    /// `victim`'s identity claimed by someone who holds `known` (an
    /// X25519 key: the attacker's, or the victim's own) and `kem` (an
    /// ML-KEM key, same). DH with the victim's public key comes out exact
    /// (`DH(known, victim) = DH(victim, known)` when `known` is the
    /// holder's peer); every other DH and decapsulation is a wrong guess.
    pub fn impostor(
        victim: &[u8; 32],
        victim_kem: Option<&[u8]>,
        known: &StaticSecret,
        kem: &MlKem768KeyPair,
    ) -> Claim {
        let (k, m, v, kp) = (known.clone(), kem.clone(), *victim, *known.public());
        Claim {
            x25519: *victim,
            kem: victim_kem.map(<[u8]>::to_vec),
            dh: Box::new(move |p| {
                let peer = if *p == kp { v } else { *p };
                x(&k).agree(&peer).expect("valid point")
            }),
            decaps: Box::new(move |ct| m.decapsulate(ct).unwrap()),
        }
    }
}

/// One side of the handshake, written from the specs.
pub struct Engine {
    name: &'static str,
    role: Role,
    pattern: Pattern,
    ss: SymmetricState,
    keyed: bool,
    next: usize,
    me: Option<Claim>,
    e: Option<X25519Private>,
    e_kem: Option<MlKem768KeyPair>,
    rs: Option<[u8; 32]>,
    rs_kem: Option<Vec<u8>>,
    re: Option<[u8; 32]>,
    re_kem: Option<Vec<u8>>,
    /// Every (label, secret) mixed into the chaining key, in order.
    pub chain: Vec<(String, Secret<32>)>,
    /// For each static key sent or received: the labels mixed before it.
    pub before_statics: Vec<Vec<String>>,
}

fn encode(x: &[u8; 32], kem: Option<&[u8]>) -> Vec<u8> {
    let mut v = x.to_vec();
    v.extend_from_slice(kem.unwrap_or_default());
    v
}

impl Engine {
    /// `peer`: the responder's public key, for patterns that need it in advance.
    pub fn new(
        name: &'static str,
        role: Role,
        me: Option<Claim>,
        peer: Option<([u8; 32], Option<Vec<u8>>)>,
    ) -> Engine {
        let pattern = pattern(name);
        let mut ss = SymmetricState::new(name, AeadAlgorithm::ChaChaPoly, b"");
        let (mut rs, mut rs_kem) = (None, None);
        if pattern.pre_responder {
            let key = match role {
                Role::Initiator => peer.expect("the responder's key"),
                Role::Responder => {
                    let c = me.as_ref().expect("our key");
                    (c.x25519, c.kem.clone())
                }
            };
            ss.mix_hash(&encode(&key.0, key.1.as_deref()));
            if role == Role::Initiator {
                (rs, rs_kem) = (Some(key.0), key.1);
            }
        }
        Engine {
            name,
            role,
            pattern,
            ss,
            keyed: false,
            next: 0,
            me,
            e: None,
            e_kem: None,
            rs,
            rs_kem,
            re: None,
            re_kem: None,
            chain: Vec::new(),
            before_statics: Vec::new(),
        }
    }

    pub fn is_finished(&self) -> bool {
        self.next == self.pattern.messages.len()
    }

    pub fn split(&mut self) -> (TrafficSecret, TrafficSecret) {
        self.ss.split()
    }

    fn tag(&self) -> usize {
        if self.keyed {
            16
        } else {
            0
        }
    }

    fn label(&self, what: &str) -> String {
        format!("akex {} {what}", self.pattern.family)
    }

    fn mix(&mut self, what: &str, secret: Secret<32>) {
        let label = self.label(what);
        self.ss.mix_key(label.as_bytes(), secret.expose());
        self.keyed = true;
        self.chain.push((label, secret));
    }

    fn note_static(&mut self) {
        let labels = self.chain.iter().map(|(l, _)| l.clone()).collect();
        self.before_statics.push(labels);
    }

    fn dh(&mut self, tok: Tok) {
        let init = self.role == Role::Initiator;
        let me = self.me.as_ref();
        let e = self.e.as_ref();
        let eph = |p: Option<[u8; 32]>| e.unwrap().agree(&p.unwrap()).unwrap();
        let stat = |p: Option<[u8; 32]>| (me.expect("our static key").dh)(&p.unwrap());
        let (secret, what) = match tok {
            Ee => (eph(self.re), "dh ee"),
            Es if init => (eph(self.rs), "dh es"),
            Es => (stat(self.re), "dh es"),
            Se if init => (stat(self.re), "dh se"),
            Se => (eph(self.rs), "dh se"),
            _ => (stat(self.rs), "dh ss"),
        };
        self.mix(what, secret);
    }

    pub fn write(&mut self, payload: &[u8]) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        if self.next == 0 && self.role == Role::Initiator {
            let h = hello(self.name)?;
            self.ss.mix_hash(&h);
            out.extend_from_slice(&h);
        }
        for &tok in self.pattern.messages[self.next] {
            match tok {
                E => {
                    let e = X25519Private::new(&Secret::random(&mut OsRng));
                    out.extend_from_slice(e.public());
                    self.ss.mix_hash(e.public());
                    self.e = Some(e);
                }
                E1 => {
                    let pair = MlKem768KeyPair::from_seed(&Secret::random(&mut OsRng));
                    self.ss
                        .encrypt_and_hash(pair.encapsulation_key(), &mut out)?;
                    self.e_kem = Some(pair);
                }
                Ekem | Skem => {
                    let ek = if tok == Ekem {
                        self.re_kem.clone()
                    } else {
                        self.rs_kem.clone()
                    };
                    let (ct, shared) = kem::encapsulate(&ek.unwrap(), &Secret::random(&mut OsRng))?;
                    self.ss.encrypt_and_hash(&ct, &mut out)?;
                    self.mix(if tok == Ekem { "kem ekem" } else { "kem skem" }, shared);
                }
                S => {
                    self.note_static();
                    let me = self.me.as_ref().expect("our static key");
                    let encoded = encode(&me.x25519, me.kem.as_deref());
                    self.ss.encrypt_and_hash(&encoded, &mut out)?;
                }
                dh => self.dh(dh),
            }
        }
        self.ss.encrypt_and_hash(payload, &mut out)?;
        self.next += 1;
        Ok(out)
    }

    pub fn read(&mut self, message: &[u8]) -> Result<Vec<u8>, Error> {
        let mut rest = message;
        if self.next == 0 && self.role == Role::Responder {
            let h = hello(self.name)?;
            assert_eq!(&rest[..h.len()], &h[..], "hello");
            self.ss.mix_hash(&h);
            rest = &rest[h.len()..];
        }
        let mut field = |n: usize| -> Vec<u8> {
            let (a, b) = rest.split_at(n.min(rest.len()));
            rest = b;
            a.to_vec()
        };
        for &tok in self.pattern.messages[self.next] {
            let mut plain = Vec::new();
            match tok {
                E => {
                    let re: [u8; 32] = field(32).try_into().expect("32 bytes");
                    self.ss.mix_hash(&re);
                    self.re = Some(re);
                }
                E1 => {
                    self.ss.decrypt_and_hash(
                        &field(kem::ENCAPSULATION_KEY_LEN + self.tag()),
                        &mut plain,
                    )?;
                    self.re_kem = Some(plain);
                }
                Ekem | Skem => {
                    self.ss
                        .decrypt_and_hash(&field(kem::CIPHERTEXT_LEN + self.tag()), &mut plain)?;
                    let shared = if tok == Ekem {
                        self.e_kem.as_ref().unwrap().decapsulate(&plain)?
                    } else {
                        (self.me.as_ref().expect("our KEM key").decaps)(&plain)
                    };
                    self.mix(if tok == Ekem { "kem ekem" } else { "kem skem" }, shared);
                }
                S => {
                    self.note_static();
                    let len = if self.pattern.kem_statics {
                        32 + kem::ENCAPSULATION_KEY_LEN
                    } else {
                        32
                    };
                    self.ss
                        .decrypt_and_hash(&field(len + self.tag()), &mut plain)?;
                    self.rs = Some(plain[..32].try_into().unwrap());
                    self.rs_kem = self.pattern.kem_statics.then(|| plain[32..].to_vec());
                }
                dh => self.dh(dh),
            }
        }
        let mut payload = Vec::new();
        self.ss.decrypt_and_hash(rest, &mut payload)?;
        self.next += 1;
        Ok(payload)
    }
}

/// How a run of the real handshake against the engine ended.
#[derive(Debug)]
pub enum Outcome {
    /// The real side refused message `k`.
    RealRefused(usize, Error),
    /// The engine could not read message `k` (it lacks a secret).
    EngineStuck(usize, Error),
    /// Both ends got through every message.
    Finished,
}

/// Runs `real` against `engine` (the other role), message by message.
pub fn duel(real: &mut Box<dyn Handshake>, engine: &mut Engine) -> Outcome {
    for k in 0..engine.pattern.messages.len() {
        let sender = if k % 2 == 0 {
            Role::Initiator
        } else {
            Role::Responder
        };
        let payload = format!("payload {k}");
        if sender == real.role() {
            let mut m = Vec::new();
            if let Err(e) = real.write_message(payload.as_bytes(), &mut m) {
                return Outcome::RealRefused(k, e);
            }
            match engine.read(&m) {
                Ok(p) => assert_eq!(p, payload.as_bytes()),
                Err(e) => return Outcome::EngineStuck(k, e),
            }
        } else {
            let m = engine.write(payload.as_bytes()).expect("the engine writes");
            let mut p = Vec::new();
            if let Err(e) = real.read_message(&m, &mut p) {
                return Outcome::RealRefused(k, e);
            }
            assert_eq!(p, payload.as_bytes());
        }
    }
    Outcome::Finished
}
