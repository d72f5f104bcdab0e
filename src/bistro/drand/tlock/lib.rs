//! A C ABI over the `timelock` crate: encrypt a message to a drand round, and decrypt it with the
//! round's signature. Every entry point checks its inputs, catches panics, and answers with a
//! status code (timelock.hpp names them); nothing here keeps state.
//!
//! The wire form is the one subtensor and bittensor-drand read: TLECiphertext as ark-serialize
//! writes it compressed, where the IBE header's v and w are Vec<u8> (a u64 length, 32) before
//! their bytes. `timelock` 0.3 holds them as [u8; 32], which serialises without the lengths, so
//! the layout is written and read here, field by field, with every length checked before use (a
//! hostile length must not make the allocator abort the process).

use ark_serialize::{CanonicalDeserialize, CanonicalSerialize};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};
use std::panic::catch_unwind;
use std::slice;
use timelock::{
    block_ciphers::AESGCMBlockCipherProvider,
    engines::{drand::TinyBLS381, EngineBLS},
    ibe::fullident::{Ciphertext as IbeCiphertext, Identity},
    tlock::{tld, tle, TLECiphertext},
};

type G2 = <TinyBLS381 as EngineBLS>::PublicKeyGroup;
const G2_COMPRESSED: usize = 96;
const MAX_FIELD: usize = 1 << 20; // no field of a commitment comes near this

fn put_vec(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// The wire form of a ciphertext (module comment).
fn to_wire(ct: &TLECiphertext<TinyBLS381>) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    ct.header.u.serialize_compressed(&mut out).ok()?;
    put_vec(&mut out, &ct.header.v);
    put_vec(&mut out, &ct.header.w);
    put_vec(&mut out, &ct.body);
    put_vec(&mut out, &ct.cipher_suite);
    Some(out)
}

/// Reads one length-prefixed field, refusing lengths beyond the input or MAX_FIELD.
fn take_vec<'a>(b: &mut &'a [u8]) -> Option<&'a [u8]> {
    if b.len() < 8 {
        return None;
    }
    let n = u64::from_le_bytes(b[..8].try_into().ok()?);
    if n > MAX_FIELD as u64 || n as usize > b.len() - 8 {
        return None;
    }
    let (field, rest) = b[8..].split_at(n as usize);
    *b = rest;
    Some(field)
}

fn from_wire(mut b: &[u8]) -> Option<TLECiphertext<TinyBLS381>> {
    if b.len() < G2_COMPRESSED {
        return None;
    }
    let u = G2::deserialize_compressed(&b[..G2_COMPRESSED]).ok()?;
    b = &b[G2_COMPRESSED..];
    let v: [u8; 32] = take_vec(&mut b)?.try_into().ok()?;
    let w: [u8; 32] = take_vec(&mut b)?.try_into().ok()?;
    let body = take_vec(&mut b)?.to_vec();
    let cipher_suite = take_vec(&mut b)?.to_vec();
    if !b.is_empty() {
        return None;
    }
    // The body is the AES-GCM output {ciphertext: Vec<u8>, nonce: Vec<u8>}, which the decryption
    // deserialises itself: its lengths are checked here first, the nonce's exactly.
    let mut inner = &body[..];
    take_vec(&mut inner)?;
    if take_vec(&mut inner)?.len() != 12 || !inner.is_empty() {
        return None;
    }
    Some(TLECiphertext { header: IbeCiphertext { u, v, w }, body, cipher_suite })
}

pub const OK: i32 = 0;
pub const BAD_PUBLIC_KEY: i32 = 1;
pub const ENCRYPTION_FAILED: i32 = 2;
pub const OUTPUT_TOO_SMALL: i32 = 3;
pub const BAD_CIPHERTEXT: i32 = 4;
pub const BAD_SIGNATURE: i32 = 5;
pub const DECRYPTION_FAILED: i32 = 6;
pub const PANICKED: i32 = 7;

/// The identity of a drand quicknet round: SHA-256 of the round as a big-endian u64 (what the
/// beacon signs, hashed to G1 with the quicknet domain separation tag by the engine).
fn round_identity(round: u64) -> Identity {
    let digest = Sha256::digest(round.to_be_bytes());
    Identity::new(b"", &digest)
}

unsafe fn input<'a>(p: *const u8, n: usize) -> &'a [u8] {
    if n == 0 {
        &[]
    } else {
        slice::from_raw_parts(p, n)
    }
}

unsafe fn output(bytes: &[u8], out: *mut u8, cap: usize, len: *mut usize) -> i32 {
    *len = bytes.len();
    if bytes.len() > cap {
        return OUTPUT_TOO_SMALL;
    }
    if !bytes.is_empty() {
        slice::from_raw_parts_mut(out, bytes.len()).copy_from_slice(bytes);
    }
    OK
}

/// Encrypts `msg` to drand `round` under the beacon's public key (96 bytes, compressed G2). The
/// 32-byte `seed` seeds the randomness (the body's key, the IBE's sigma, the nonce): pass fresh
/// random bytes; a fixed seed gives a fixed ciphertext (tests). Writes the ciphertext's wire form
/// to `out` and its size to `out_len`.
#[no_mangle]
pub unsafe extern "C" fn bistro_tlock_encrypt(
    public_key: *const u8,
    public_key_len: usize,
    round: u64,
    msg: *const u8,
    msg_len: usize,
    seed: *const u8,
    out: *mut u8,
    out_cap: usize,
    out_len: *mut usize,
) -> i32 {
    catch_unwind(|| {
        let pk_bytes = input(public_key, public_key_len);
        let pk = match <TinyBLS381 as EngineBLS>::PublicKeyGroup::deserialize_compressed(pk_bytes) {
            Ok(pk) => pk,
            Err(_) => return BAD_PUBLIC_KEY,
        };
        let mut seed_bytes = [0u8; 32];
        seed_bytes.copy_from_slice(input(seed, 32));
        let mut rng = ChaCha20Rng::from_seed(seed_bytes);
        let mut secret = [0u8; 32];
        rng.fill_bytes(&mut secret);
        let ct = match tle::<TinyBLS381, AESGCMBlockCipherProvider, ChaCha20Rng>(
            pk,
            secret,
            input(msg, msg_len),
            round_identity(round),
            rng,
        ) {
            Ok(ct) => ct,
            Err(_) => return ENCRYPTION_FAILED,
        };
        match to_wire(&ct) {
            Some(bytes) => output(&bytes, out, out_cap, out_len),
            None => ENCRYPTION_FAILED,
        }
    })
    .unwrap_or(PANICKED)
}

/// Decrypts a TLECiphertext with the round's signature (48 bytes, compressed G1).
#[no_mangle]
pub unsafe extern "C" fn bistro_tlock_decrypt(
    ciphertext: *const u8,
    ciphertext_len: usize,
    signature: *const u8,
    signature_len: usize,
    out: *mut u8,
    out_cap: usize,
    out_len: *mut usize,
) -> i32 {
    catch_unwind(|| {
        let ct = match from_wire(input(ciphertext, ciphertext_len)) {
            Some(ct) => ct,
            None => return BAD_CIPHERTEXT,
        };
        let sig = match <TinyBLS381 as EngineBLS>::SignatureGroup::deserialize_compressed(input(
            signature,
            signature_len,
        )) {
            Ok(sig) => sig,
            Err(_) => return BAD_SIGNATURE,
        };
        match tld::<TinyBLS381, AESGCMBlockCipherProvider>(ct, sig) {
            Ok(plain) => output(&plain, out, out_cap, out_len),
            Err(_) => DECRYPTION_FAILED,
        }
    })
    .unwrap_or(PANICKED)
}
