//! The lower bound of a Noise handshake, as docs/benchmarks.md defines it:
//! every primitive operation the handshake performs, each × its median
//! measured in the same run, hashes included.
//!
//! The operations are counted, not assumed: one handshake runs through
//! snow with akex's resolver wrapped in a counting one (same primitives,
//! same calls as `NoiseHandshake`), which records every X25519 key
//! generation and DH, every HMAC (snow's HKDF is three of them), every
//! stand-alone hash by its number of compression blocks, every AEAD key
//! setup, seal and open. Each kind of operation is then timed alone
//! through the same resolver.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use akex::hazmat::AkexResolver;
use snow::params::{CipherChoice, DHChoice, HashChoice};
use snow::resolvers::CryptoResolver;
use snow::types::{Cipher, Dh, Hash, Random};

/// Operation counts of one handshake (both sides).
#[derive(Debug, Default)]
pub struct Counts {
    keygen: AtomicU64,
    dh: AtomicU64,
    hmac: AtomicU64,
    /// Stand-alone hashes (MixHash), by compression blocks: 1, 2, 3+.
    hash_blocks: [AtomicU64; 3],
    cipher_set: AtomicU64,
    seal: AtomicU64,
    open: AtomicU64,
}

/// A snapshot of [`Counts`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpCounts {
    pub keygen: u64,
    pub dh: u64,
    pub hmac: u64,
    pub hash_blocks: [u64; 3],
    pub cipher_set: u64,
    pub seal: u64,
    pub open: u64,
}

impl Counts {
    fn snapshot(&self) -> OpCounts {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        OpCounts {
            keygen: l(&self.keygen),
            dh: l(&self.dh),
            hmac: l(&self.hmac),
            hash_blocks: [
                l(&self.hash_blocks[0]),
                l(&self.hash_blocks[1]),
                l(&self.hash_blocks[2]),
            ],
            cipher_set: l(&self.cipher_set),
            seal: l(&self.seal),
            open: l(&self.open),
        }
    }
}

fn bump(a: &AtomicU64) {
    a.fetch_add(1, Ordering::Relaxed);
}

/// akex's resolver with every primitive counted.
pub struct Counting {
    inner: AkexResolver,
    counts: Arc<Counts>,
}

impl CryptoResolver for Counting {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        self.inner.resolve_rng()
    }
    fn resolve_dh(&self, choice: &DHChoice) -> Option<Box<dyn Dh>> {
        Some(Box::new(CountingDh(
            self.inner.resolve_dh(choice)?,
            self.counts.clone(),
        )))
    }
    fn resolve_hash(&self, choice: &HashChoice) -> Option<Box<dyn Hash>> {
        Some(Box::new(CountingHash {
            inner: self.inner.resolve_hash(choice)?,
            counts: self.counts.clone(),
            pending: 0,
        }))
    }
    fn resolve_cipher(&self, choice: &CipherChoice) -> Option<Box<dyn Cipher>> {
        Some(Box::new(CountingCipher(
            self.inner.resolve_cipher(choice)?,
            self.counts.clone(),
        )))
    }
}

struct CountingDh(Box<dyn Dh>, Arc<Counts>);

impl Dh for CountingDh {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn pub_len(&self) -> usize {
        self.0.pub_len()
    }
    fn priv_len(&self) -> usize {
        self.0.priv_len()
    }
    fn set(&mut self, privkey: &[u8]) {
        self.0.set(privkey)
    }
    fn generate(&mut self, rng: &mut dyn Random) -> Result<(), snow::Error> {
        bump(&self.1.keygen);
        self.0.generate(rng)
    }
    fn pubkey(&self) -> &[u8] {
        self.0.pubkey()
    }
    fn privkey(&self) -> &[u8] {
        self.0.privkey()
    }
    fn dh(&self, pubkey: &[u8], out: &mut [u8]) -> Result<(), snow::Error> {
        bump(&self.1.dh);
        self.0.dh(pubkey, out)
    }
}

struct CountingHash {
    inner: Box<dyn Hash>,
    counts: Arc<Counts>,
    /// Bytes input since the last reset (for the block count).
    pending: usize,
}

impl Hash for CountingHash {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn block_len(&self) -> usize {
        self.inner.block_len()
    }
    fn hash_len(&self) -> usize {
        self.inner.hash_len()
    }
    fn reset(&mut self) {
        self.pending = 0;
        self.inner.reset()
    }
    fn input(&mut self, data: &[u8]) {
        self.pending += data.len();
        self.inner.input(data)
    }
    fn result(&mut self, out: &mut [u8]) {
        let blocks = self.pending.div_ceil(self.inner.block_len()).max(1);
        bump(&self.counts.hash_blocks[blocks.min(3) - 1]);
        self.pending = 0;
        self.inner.result(out)
    }
    fn hmac(&mut self, key: &[u8], data: &[u8], out: &mut [u8]) {
        // One operation: the inner hash's own passes are not counted again.
        bump(&self.counts.hmac);
        self.inner.hmac(key, data, out)
    }
}

struct CountingCipher(Box<dyn Cipher>, Arc<Counts>);

impl Cipher for CountingCipher {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn set(&mut self, key: &[u8; 32]) {
        bump(&self.1.cipher_set);
        self.0.set(key)
    }
    fn encrypt(&self, nonce: u64, authtext: &[u8], plaintext: &[u8], out: &mut [u8]) -> usize {
        bump(&self.1.seal);
        self.0.encrypt(nonce, authtext, plaintext, out)
    }
    fn decrypt(
        &self,
        nonce: u64,
        authtext: &[u8],
        ciphertext: &[u8],
        out: &mut [u8],
    ) -> Result<usize, snow::Error> {
        bump(&self.1.open);
        self.0.decrypt(nonce, authtext, ciphertext, out)
    }
}

/// Counts the operations of one handshake of `name` (keys as the
/// pattern needs them), run through snow with the counting resolver.
pub fn count(name: &str, initiator_static: &[u8; 32], responder_static: &[u8; 32]) -> OpCounts {
    let counts = Arc::new(Counts::default());
    let params: snow::params::NoiseParams = name.parse().expect("a Noise name");
    let resolver = || -> Box<dyn CryptoResolver + Send> {
        Box::new(Counting {
            inner: AkexResolver::new(akex::crypto::OsRng),
            counts: counts.clone(),
        })
    };
    let pattern = params.handshake.pattern;
    let pub_of = |k: &[u8; 32]| akex::hazmat::x25519::public_key(&akex::crypto::Secret::new(*k));
    let mut ib = snow::Builder::with_resolver(params.clone(), resolver());
    let mut rb = snow::Builder::with_resolver(params.clone(), resolver());
    if pattern.needs_local_static_key(true) {
        ib = ib.local_private_key(initiator_static).expect("key");
    }
    if pattern.needs_local_static_key(false) {
        rb = rb.local_private_key(responder_static).expect("key");
    }
    let (ipub, rpub) = (pub_of(initiator_static), pub_of(responder_static));
    if pattern.need_known_remote_pubkey(true) {
        ib = ib.remote_public_key(&rpub).expect("key");
    }
    if pattern.need_known_remote_pubkey(false) {
        rb = rb.remote_public_key(&ipub).expect("key");
    }
    let mut i = ib.build_initiator().expect("initiator");
    let mut r = rb.build_responder().expect("responder");
    // Building set the static keys: not part of the handshake's work.
    let before = counts.snapshot();
    let (mut buf, mut payload) = (vec![0u8; 1024], vec![0u8; 1024]);
    while !(i.is_handshake_finished() && r.is_handshake_finished()) {
        let (from, to) = if i.is_my_turn() {
            (&mut i, &mut r)
        } else {
            (&mut r, &mut i)
        };
        let n = from.write_message(&[], &mut buf).expect("write");
        to.read_message(&buf[..n], &mut payload).expect("read");
    }
    // Transport keys ready, as the timed handshake ends: two AEAD keys
    // per side.
    let _ = (
        i.into_transport_mode().expect("transport"),
        r.into_transport_mode().expect("transport"),
    );
    let after = counts.snapshot();
    OpCounts {
        keygen: after.keygen - before.keygen,
        dh: after.dh - before.dh,
        hmac: after.hmac - before.hmac,
        hash_blocks: [0, 1, 2].map(|k| after.hash_blocks[k] - before.hash_blocks[k]),
        cipher_set: after.cipher_set - before.cipher_set,
        seal: after.seal - before.seal,
        open: after.open - before.open,
    }
}

/// Medians of each kind of operation through akex's resolver.
#[derive(Debug, Clone, Copy)]
pub struct OpTimes {
    pub keygen: Duration,
    pub dh: Duration,
    pub hmac: Duration,
    pub hash_blocks: [Duration; 3],
    pub cipher_set: Duration,
    pub seal: Duration,
    pub open: Duration,
}

fn median_of(runs: usize, mut f: impl FnMut()) -> Duration {
    // Batches of 16: single calls of ~100 ns are below the clock's grain.
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..16 {
                f();
            }
            t.elapsed() / 16
        })
        .collect();
    times.sort();
    times[runs / 2]
}

/// Times every kind of operation of `hash` and `cipher` (and X25519).
pub fn time_ops(hash: &HashChoice, cipher: &CipherChoice, runs: usize) -> OpTimes {
    let resolver = AkexResolver::new(akex::crypto::OsRng);
    let mut rng = resolver.resolve_rng().expect("rng");
    let mut dh = resolver.resolve_dh(&DHChoice::Curve25519).expect("dh");
    let keygen = median_of(runs, || dh.generate(&mut *rng).expect("keygen"));
    let mut peer = resolver.resolve_dh(&DHChoice::Curve25519).expect("dh");
    peer.generate(&mut *rng).expect("keygen");
    let mut out = [0u8; 64];
    let dh_time = median_of(runs, || dh.dh(peer.pubkey(), &mut out).expect("dh"));
    let mut h = resolver.resolve_hash(hash).expect("hash");
    let (key, data) = ([7u8; 32], [9u8; 33]);
    let hmac = median_of(runs, || h.hmac(&key, black_box(&data), &mut out));
    let block = h.block_len();
    let hash_blocks = [1usize, 2, 3].map(|blocks| {
        let input = vec![5u8; block * blocks];
        median_of(runs, || {
            h.reset();
            h.input(black_box(&input));
            h.result(&mut out);
        })
    });
    let mut c = resolver.resolve_cipher(cipher).expect("cipher");
    let cipher_set = median_of(runs, || c.set(black_box(&[3u8; 32])));
    let (plain, ad) = ([1u8; 32], [2u8; 32]);
    let mut sealed = [0u8; 48];
    let mut n = 0u64;
    let seal = median_of(runs, || {
        n += 1;
        c.encrypt(n, &ad, black_box(&plain), &mut sealed);
    });
    c.encrypt(0, &ad, &plain, &mut sealed);
    let mut opened = [0u8; 48];
    let open = median_of(runs, || {
        c.decrypt(0, &ad, black_box(&sealed), &mut opened)
            .expect("open");
    });
    OpTimes {
        keygen,
        dh: dh_time,
        hmac,
        hash_blocks,
        cipher_set,
        seal,
        open,
    }
}

impl OpCounts {
    /// Σ count × median over every operation.
    pub fn bound(&self, t: &OpTimes) -> Duration {
        let n = |c: u64, d: Duration| d * c as u32;
        n(self.keygen, t.keygen)
            + n(self.dh, t.dh)
            + n(self.hmac, t.hmac)
            + (0..3)
                .map(|k| n(self.hash_blocks[k], t.hash_blocks[k]))
                .sum::<Duration>()
            + n(self.cipher_set, t.cipher_set)
            + n(self.seal, t.seal)
            + n(self.open, t.open)
    }

    /// X25519 alone: key generations and DHs.
    pub fn x25519_bound(&self, t: &OpTimes) -> Duration {
        t.keygen * self.keygen as u32 + t.dh * self.dh as u32
    }
}
