//! PQ-authenticated handshakes: PQNoise-style pqXX and pqIK (Angel,
//! Dowling, Hülsing, Schwabe, Weber, CCS 2022) with ML-KEM-768 static keys,
//! in hybrid form with X25519.
//!
//! Each side's static key is an X25519 key *and* an ML-KEM-768 key. A peer
//! is authenticated by `skem` (a ciphertext encapsulated to its static
//! ML-KEM key: only the holder of the decapsulation key derives the next
//! chaining key) and, as in classical Noise, by the static DH tokens. So
//! authentication holds if either X25519 or ML-KEM-768 holds at handshake
//! time, and confidentiality holds if either holds ever. Run by the token
//! engine in [`super::hybrid`]; spec in `protocols/akex-pq-*.md`.

use super::hybrid::{Labels, Spec, Token::*};

pub use super::hybrid::{HybridConfig as PqConfig, HybridHandshake as PqHandshake};

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

pub(crate) static SPECS: [Spec; 2] = [
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
