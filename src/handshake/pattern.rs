//! The message patterns of the KEM-token engine (`hybrid.rs`): the
//! hybrid and PQ-authenticated families side by side, as data.
//!
//! A pattern is a list of messages, each a list of [`Token`]s, plus the
//! family's `MixKey` labels. The engine in [`super::hybrid`] runs any of
//! them; [`super::hybrid`] and [`super::pq`] are the two families' public
//! faces. Specs: `protocols/hybrid.md`, `protocols/pq.md`.

use crate::crypto::kem;
use crate::crypto::TAG_LEN;
use crate::handshake::Role;

/// Hybrid XX: mutual authentication with X25519 static keys, both statics
/// sent encrypted; ephemeral X25519 + ephemeral ML-KEM-768.
pub const HYBRID_XX: &str = "akex-hybrid-xx-x25519-mlkem768-chachapoly-sha256";
/// Hybrid IK: the initiator knows the responder's X25519 static key; one
/// round trip; mutual authentication.
pub const HYBRID_IK: &str = "akex-hybrid-ik-x25519-mlkem768-chachapoly-sha256";
/// Hybrid NK: the initiator knows the responder's X25519 static key; only
/// the responder is authenticated (the TLS-like shape).
pub const HYBRID_NK: &str = "akex-hybrid-nk-x25519-mlkem768-chachapoly-sha256";

/// One step of a message pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Token {
    /// Ephemeral X25519 public key (32 bytes, in clear, hashed).
    E,
    /// Ephemeral ML-KEM-768 encapsulation key (1184 bytes, encrypted if keyed).
    E1,
    /// Ciphertext to the peer's `E1` key; its secret is mixed in (`ekem`).
    Ekem,
    /// Our static key (X25519, plus the ML-KEM key in PQ protocols), encrypted.
    S,
    /// Ciphertext to the peer's static ML-KEM key; its secret is mixed in (`skem`).
    Skem,
    /// DH(e, re).
    Ee,
    /// DH(initiator e, responder s).
    Es,
    /// DH(initiator s, responder e).
    Se,
    /// DH(s, rs).
    Ss,
}

/// The `mix_key` labels of one protocol family.
#[derive(Debug)]
pub(crate) struct Labels {
    pub ee: &'static [u8],
    pub es: &'static [u8],
    pub se: &'static [u8],
    pub ss: &'static [u8],
    pub ekem: &'static [u8],
    pub skem: &'static [u8],
}

/// A protocol: its name, pattern and labels.
#[derive(Debug)]
pub(crate) struct Spec {
    pub name: &'static str,
    /// The responder's static key is known to the initiator in advance
    /// (`<- s` pre-message, hashed after the prologue).
    pub pre_responder_static: bool,
    /// Static keys are X25519 + ML-KEM-768 (PQ-authenticated family).
    pub kem_statics: bool,
    pub labels: &'static Labels,
    pub messages: &'static [&'static [Token]],
}

/// Labels of the hybrid family (`akex hybrid ...`).
pub(crate) static HYBRID_LABELS: Labels = Labels {
    ee: b"akex hybrid dh ee",
    es: b"akex hybrid dh es",
    se: b"akex hybrid dh se",
    ss: b"akex hybrid dh ss",
    ekem: b"akex hybrid kem ekem",
    skem: b"akex hybrid kem skem",
};

use Token::*;

static HYBRID_SPECS: [Spec; 3] = [
    Spec {
        name: HYBRID_XX,
        pre_responder_static: false,
        kem_statics: false,
        labels: &HYBRID_LABELS,
        messages: &[&[E, E1], &[E, Ee, Ekem, S, Es], &[S, Se]],
    },
    Spec {
        name: HYBRID_IK,
        pre_responder_static: true,
        kem_statics: false,
        labels: &HYBRID_LABELS,
        messages: &[&[E, E1, Es, S, Ss], &[E, Ee, Ekem, Se]],
    },
    Spec {
        name: HYBRID_NK,
        pre_responder_static: true,
        kem_statics: false,
        labels: &HYBRID_LABELS,
        messages: &[&[E, E1, Es], &[E, Ee, Ekem]],
    },
];

/// Every protocol name this engine runs (hybrid and PQ-authenticated).
pub fn protocol_names() -> Vec<&'static str> {
    HYBRID_SPECS
        .iter()
        .chain(PQ_SPECS.iter())
        .map(|s| s.name)
        .collect()
}

pub(crate) fn find_spec(name: &str) -> Option<&'static Spec> {
    HYBRID_SPECS
        .iter()
        .chain(PQ_SPECS.iter())
        .find(|s| s.name == name)
}

impl Spec {
    pub(crate) fn writes(&self, role: Role, token: Token) -> bool {
        self.messages
            .iter()
            .enumerate()
            .any(|(i, m)| sender(i) == role && m.contains(&token))
    }

    pub(crate) fn needs_local_static(&self, role: Role) -> bool {
        self.writes(role, S) || (role == Role::Responder && self.pre_responder_static)
    }

    pub(crate) fn needs_remote_static(&self, role: Role) -> bool {
        role == Role::Initiator && self.pre_responder_static
    }

    pub(crate) fn authenticates_peer_of(&self, role: Role) -> bool {
        self.needs_local_static(role.peer())
    }

    pub(crate) fn static_len(&self) -> usize {
        32 + if self.kem_statics {
            kem::ENCAPSULATION_KEY_LEN
        } else {
            0
        }
    }

    /// The fields of each handshake message (name, length) with an empty
    /// payload: the byte layout the specs document.
    pub(crate) fn layout(&self) -> Vec<Vec<(&'static str, usize)>> {
        let mut keyed = false;
        let tag = |keyed: bool| if keyed { TAG_LEN } else { 0 };
        let mut out = Vec::new();
        for (index, m) in self.messages.iter().enumerate() {
            let mut fields = Vec::new();
            if index == 0 {
                // "AKEX" || version || name_len || name (akex mode hello).
                fields.push(("hello", 6 + self.name.len()));
            }
            for t in *m {
                match t {
                    E => fields.push(("e", 32)),
                    E1 => fields.push(("e1", kem::ENCAPSULATION_KEY_LEN + tag(keyed))),
                    Ekem => {
                        fields.push(("ekem", kem::CIPHERTEXT_LEN + tag(keyed)));
                        keyed = true;
                    }
                    Skem => {
                        fields.push(("skem", kem::CIPHERTEXT_LEN + tag(keyed)));
                        keyed = true;
                    }
                    S => fields.push(("s", self.static_len() + tag(keyed))),
                    Ee | Es | Se | Ss => keyed = true,
                }
            }
            fields.push(("payload", tag(keyed)));
            out.push(fields);
        }
        out
    }

    /// Byte length of each handshake message with empty payloads.
    pub(crate) fn message_sizes(&self) -> Vec<usize> {
        self.layout()
            .iter()
            .map(|m| m.iter().map(|f| f.1).sum())
            .collect()
    }
}

pub(crate) fn sender(index: usize) -> Role {
    if index.is_multiple_of(2) {
        Role::Initiator
    } else {
        Role::Responder
    }
}

/// What a protocol offers, for listings (`akex protocols`) and the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProtocolInfo {
    /// The full protocol name.
    pub name: &'static str,
    /// Handshake messages (initiator first).
    pub messages: usize,
    /// Size of each handshake message with empty payloads, in bytes.
    pub message_sizes: Vec<usize>,
    /// Does the initiator need the responder's static key in advance?
    pub initiator_needs_responder_key: bool,
    /// Is the initiator authenticated to the responder?
    pub authenticates_initiator: bool,
    /// Is authentication post-quantum (ML-KEM static keys)?
    pub pq_authentication: bool,
}

/// Facts about a hybrid or PQ-authenticated protocol, or `None` for an
/// unknown name.
pub fn protocol_info(name: &str) -> Option<ProtocolInfo> {
    let spec = find_spec(name)?;
    Some(ProtocolInfo {
        name: spec.name,
        messages: spec.messages.len(),
        message_sizes: spec.message_sizes(),
        initiator_needs_responder_key: spec.pre_responder_static,
        authenticates_initiator: spec.authenticates_peer_of(Role::Responder),
        pq_authentication: spec.kem_statics,
    })
}

/// The byte layout of each handshake message of `name` with an empty
/// payload: `(field, length)` in wire order (`payload` is the AEAD tag
/// once keyed, else empty). `None` for an unknown name.
pub fn message_layout(name: &str) -> Option<Vec<Vec<(&'static str, usize)>>> {
    find_spec(name).map(Spec::layout)
}

// ---- the PQ-authenticated family (protocols/pq.md) -----------------------

/// PQ XX: four messages, both static keys (X25519 + ML-KEM-768) sent
/// encrypted, each authenticated by a KEM encapsulation and a DH.
pub const PQ_XX: &str = "akex-pq-xx-x25519-mlkem768-chachapoly-sha256";
/// PQ IK: one round trip; the initiator knows the responder's static keys.
pub const PQ_IK: &str = "akex-pq-ik-x25519-mlkem768-chachapoly-sha256";

/// Labels of the PQ-authenticated family (`akex pq ...`).
pub(crate) static PQ_LABELS: Labels = Labels {
    ee: b"akex pq dh ee",
    es: b"akex pq dh es",
    se: b"akex pq dh se",
    ss: b"akex pq dh ss",
    ekem: b"akex pq kem ekem",
    skem: b"akex pq kem skem",
};

pub(crate) static PQ_SPECS: [Spec; 2] = [
    // PQNoise pqXX: -> e  <- ekem, s  -> skem, s  <- skem,
    // plus the classical XX DH tokens (ee, es, se).
    Spec {
        name: PQ_XX,
        pre_responder_static: false,
        kem_statics: true,
        labels: &PQ_LABELS,
        messages: &[&[E, E1], &[E, Ee, Ekem, S, Es], &[Skem, S, Se], &[Skem]],
    },
    // PQNoise pqIK: <- s ... -> skem, e, s  <- ekem, skem,
    // plus the classical IK DH tokens (es, ss, ee, se).
    Spec {
        name: PQ_IK,
        pre_responder_static: true,
        kem_statics: true,
        labels: &PQ_LABELS,
        messages: &[&[E, E1, Es, Skem, S, Ss], &[E, Ee, Ekem, Se, Skem]],
    },
];
