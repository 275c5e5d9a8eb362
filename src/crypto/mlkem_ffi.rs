//! ML-KEM-768 key generation and encapsulation from passed-in randomness,
//! and decapsulation, on aws-lc (mlkem-native).
//!
//! aws-lc-rs offers only randomized key generation and encapsulation; the
//! deterministic entry points (`EVP_PKEY_keygen_deterministic`,
//! `EVP_PKEY_encapsulate_deterministic`, aws-lc's
//! `openssl/experimental/kem_deterministic_api.h`) are reachable only
//! through `aws-lc-sys`. This is the one module of the crate with `unsafe`:
//! each call owns its buffers, checks every length before and after the
//! call, and frees what aws-lc allocated on every path.
//!
//! The randomness (the seed, `m`) comes from akex's `RandomSource`, not
//! from aws-lc's approved RBG, and these are aws-lc's internal entry
//! points: this use of ML-KEM is outside any FIPS 140-3 boundary.
//!
//! aws-lc zeroizes its intermediate values (mlkem-native follows FIPS 203
//! §3.3) and the key material it frees (`OPENSSL_free` cleanses), and it
//! runs the FIPS 203 input checks itself: the modulus check on every
//! encapsulation key it encapsulates to, the hash check on every
//! decapsulation key it decapsulates with.
#![allow(unsafe_code)]

use std::ptr::{self, NonNull};

use aws_lc_sys as sys;

use super::kem::{CIPHERTEXT_LEN, DECAPSULATION_KEY_LEN, ENCAPSULATION_KEY_LEN, SHARED_SECRET_LEN};

/// An aws-lc ML-KEM-768 key (`EVP_PKEY`): the decapsulation key and its
/// encapsulation key. Read-only after creation, so shared between threads.
pub(super) struct Pkey(NonNull<sys::EVP_PKEY>);

// SAFETY: aws-lc's EVP_PKEY is reference counted with C11 atomics
// (crypto/refcount_c11.c), and nothing here changes a key after creating
// it: a new EVP_PKEY_CTX only takes a reference, and decapsulation only
// reads the secret key (crypto/fipsmodule/evp/p_kem.c). aws-lc's header
// classes a non-const EVP_PKEY argument as mutating, so this rests on the
// code, as aws-lc-rs's own `Sync` decapsulation key does.
unsafe impl Send for Pkey {}
// SAFETY: as above: only read through shared references.
unsafe impl Sync for Pkey {}

impl Drop for Pkey {
    fn drop(&mut self) {
        // SAFETY: we own one reference, taken when the key was created.
        unsafe { sys::EVP_PKEY_free(self.0.as_ptr()) }
    }
}

/// An `EVP_PKEY_CTX`, freed on drop.
struct Ctx(NonNull<sys::EVP_PKEY_CTX>);

impl Drop for Ctx {
    fn drop(&mut self) {
        // SAFETY: the context was created by us and is freed once.
        unsafe { sys::EVP_PKEY_CTX_free(self.0.as_ptr()) }
    }
}

/// aws-lc reports failures through its thread's error queue. Each call
/// here marks the queue first and pops back to the mark when done, so it
/// leaves none of its entries behind and removes nobody else's.
struct ErrMark;

impl ErrMark {
    fn set() -> Self {
        // SAFETY: no arguments; marks this thread's queue.
        unsafe { sys::ERR_set_mark() };
        ErrMark
    }
}

impl Drop for ErrMark {
    fn drop(&mut self) {
        // SAFETY: no arguments; pops this thread's entries since the mark.
        unsafe { sys::ERR_pop_to_mark() };
    }
}

/// A failure, reported as `None` (the entries go with the [`ErrMark`]).
fn failed<T>() -> Option<T> {
    None
}

fn ctx_for(pkey: &Pkey) -> Option<Ctx> {
    // SAFETY: `pkey` is a live key; the context takes its own reference.
    let ctx = unsafe { sys::EVP_PKEY_CTX_new(pkey.0.as_ptr(), ptr::null_mut()) };
    NonNull::new(ctx).map(Ctx).or_else(failed)
}

/// ML-KEM.KeyGen_internal(d, z) from `seed = d ‖ z`: the key, its
/// encapsulation key and its expanded decapsulation key (written into
/// `dk`, which the caller erases).
pub(super) fn keygen(
    seed: &[u8; 64],
    ek: &mut [u8; ENCAPSULATION_KEY_LEN],
    dk: &mut [u8; DECAPSULATION_KEY_LEN],
) -> Option<Pkey> {
    let _mark = ErrMark::set();
    // SAFETY: plain constructor; NULL is checked.
    let ctx = unsafe { sys::EVP_PKEY_CTX_new_id(sys::EVP_PKEY_KEM, ptr::null_mut()) };
    let ctx = NonNull::new(ctx).map(Ctx).or_else(failed)?;
    // SAFETY: `ctx` is live; the calls only configure it.
    let ready = unsafe {
        sys::EVP_PKEY_CTX_kem_set_params(ctx.0.as_ptr(), sys::NID_MLKEM768) == 1
            && sys::EVP_PKEY_keygen_init(ctx.0.as_ptr()) == 1
    };
    if !ready {
        return failed();
    }
    let mut out: *mut sys::EVP_PKEY = ptr::null_mut();
    let mut seed_len = seed.len();
    // SAFETY: `seed` is readable for `seed_len` bytes; aws-lc checks that
    // length against the KEM's and allocates `out`, which we own after.
    let ok = unsafe {
        sys::EVP_PKEY_keygen_deterministic(ctx.0.as_ptr(), &mut out, seed.as_ptr(), &mut seed_len)
    };
    let pkey = NonNull::new(out).map(Pkey);
    if ok != 1 {
        return failed();
    }
    let pkey = pkey.or_else(failed)?;
    let (mut ek_len, mut dk_len) = (ek.len(), dk.len());
    // SAFETY: the output buffers are writable for the lengths passed; aws-lc
    // fails rather than write more, and reports what it wrote.
    let ok = unsafe {
        sys::EVP_PKEY_get_raw_public_key(pkey.0.as_ptr(), ek.as_mut_ptr(), &mut ek_len) == 1
            && sys::EVP_PKEY_get_raw_private_key(pkey.0.as_ptr(), dk.as_mut_ptr(), &mut dk_len) == 1
    };
    if !ok || ek_len != ENCAPSULATION_KEY_LEN || dk_len != DECAPSULATION_KEY_LEN {
        return failed();
    }
    Some(pkey)
}

/// The key for an expanded decapsulation key and its encapsulation key
/// (length, hash and modulus checks done by the caller), after aws-lc's
/// pairwise check.
pub(super) fn from_raw(
    ek: &[u8; ENCAPSULATION_KEY_LEN],
    dk: &[u8; DECAPSULATION_KEY_LEN],
) -> Option<Pkey> {
    let _mark = ErrMark::set();
    // SAFETY: both buffers are readable for the lengths passed; aws-lc
    // copies them and checks the lengths against ML-KEM-768's.
    let pkey = unsafe {
        sys::EVP_PKEY_kem_new_raw_key(
            sys::NID_MLKEM768,
            ek.as_ptr(),
            ek.len(),
            dk.as_ptr(),
            dk.len(),
        )
    };
    let pkey = NonNull::new(pkey).map(Pkey).or_else(failed)?;
    // A pairwise check on import (an encapsulation and a decapsulation
    // that must agree): a damaged dk_PKE would otherwise pass the FIPS 203
    // checks and silently yield wrong shared keys.
    // SAFETY: `pkey` is live and holds both halves.
    if unsafe { sys::EVP_PKEY_kem_check_key(pkey.0.as_ptr()) } != 1 {
        return failed();
    }
    Some(pkey)
}

/// ML-KEM.Encaps_internal(ek, m). `None` if aws-lc refuses the key (its
/// modulus check) or fails.
pub(super) fn encapsulate(
    ek: &[u8; ENCAPSULATION_KEY_LEN],
    m: &[u8; 32],
    ct: &mut [u8; CIPHERTEXT_LEN],
    shared: &mut [u8; SHARED_SECRET_LEN],
) -> Option<()> {
    let _mark = ErrMark::set();
    // SAFETY: `ek` is readable for its length; aws-lc copies it.
    let pkey =
        unsafe { sys::EVP_PKEY_kem_new_raw_public_key(sys::NID_MLKEM768, ek.as_ptr(), ek.len()) };
    let pkey = NonNull::new(pkey).map(Pkey).or_else(failed)?;
    let ctx = ctx_for(&pkey)?;
    let (mut ct_len, mut ss_len, mut m_len) = (ct.len(), shared.len(), m.len());
    // SAFETY: every buffer is valid for the length passed with it; aws-lc
    // checks those lengths against the KEM's before writing.
    let ok = unsafe {
        sys::EVP_PKEY_encapsulate_deterministic(
            ctx.0.as_ptr(),
            ct.as_mut_ptr(),
            &mut ct_len,
            shared.as_mut_ptr(),
            &mut ss_len,
            m.as_ptr(),
            &mut m_len,
        )
    };
    if ok != 1 || ct_len != CIPHERTEXT_LEN || ss_len != SHARED_SECRET_LEN {
        return failed();
    }
    Some(())
}

/// ML-KEM.Decaps with `pkey`'s decapsulation key (implicit rejection: a
/// well-formed wrong ciphertext gives a pseudorandom key, not an error).
pub(super) fn decapsulate(
    pkey: &Pkey,
    ct: &[u8; CIPHERTEXT_LEN],
    shared: &mut [u8; SHARED_SECRET_LEN],
) -> Option<()> {
    let _mark = ErrMark::set();
    let ctx = ctx_for(pkey)?;
    let mut ss_len = shared.len();
    // SAFETY: `shared` is writable for `ss_len` bytes and `ct` readable for
    // its length; aws-lc checks both against the KEM's.
    let ok = unsafe {
        sys::EVP_PKEY_decapsulate(
            ctx.0.as_ptr(),
            shared.as_mut_ptr(),
            &mut ss_len,
            ct.as_ptr(),
            ct.len(),
        )
    };
    if ok != 1 || ss_len != SHARED_SECRET_LEN {
        return failed();
    }
    Some(())
}
