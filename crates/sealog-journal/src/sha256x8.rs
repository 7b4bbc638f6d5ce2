//! SHA-256 over many messages at once: the leaf hashes of a commit or of a
//! block being verified.
//!
//! Each message is `prefix ‖ bytes` (RFC 9162's 0x00 for a leaf, 0x01 for
//! an interior node). On a CPU with the SHA extensions (`sha_ni`), `sha2`'s
//! one-message-at-a-time code is the fastest there is, and is what runs. On
//! a CPU without them but with AVX2 (Intel server parts before Ice Lake,
//! and any machine under valgrind, which does not offer the extensions),
//! eight messages are hashed at once, one per 32-bit lane of the vector
//! registers, the scheme of Intel's multi-buffer hashing: a lane that
//! finishes its message takes the next one, so messages of any lengths
//! keep all eight lanes busy.
//!
//! Hand-written because no maintained crate hashes many independent
//! messages at once, and this is the journal's hottest loop: `sha2`'s
//! portable code costs about 3,000 instructions per 64-byte block, the
//! eight lanes about 500. Property tests check every path against `sha2`
//! over lengths that cross every block boundary.

use sha2::{Digest, Sha256};

use crate::merkle::Hash;

/// The engine chosen for this process, on first use.
static BEST: std::sync::OnceLock<Engine> = std::sync::OnceLock::new();

/// How a batch is hashed on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// `sha2`, one message at a time (SHA extensions when the CPU has them).
    OneByOne,
    /// Eight messages at a time in AVX2 lanes.
    EightLanes,
}

impl Engine {
    /// The fastest engine this CPU offers, or the one the environment
    /// variable `SEALOG_SHA256` names (`sha2` or `avx2`, for benchmarks and
    /// for tests of the eight lanes on a CPU that has the SHA extensions).
    pub fn best() -> Engine {
        *BEST.get_or_init(|| {
            match std::env::var("SEALOG_SHA256").as_deref() {
                Ok("sha2") => return Engine::OneByOne,
                Ok("avx2") if Engine::available().contains(&Engine::EightLanes) => {
                    return Engine::EightLanes
                }
                _ => {}
            }
            #[cfg(target_arch = "x86_64")]
            {
                if !std::arch::is_x86_feature_detected!("sha")
                    && std::arch::is_x86_feature_detected!("avx2")
                {
                    return Engine::EightLanes;
                }
            }
            Engine::OneByOne
        })
    }

    /// Makes `engine` the one [`Engine::best`] answers in this process,
    /// if no batch was hashed yet: for tests of the eight lanes on a CPU
    /// that has the SHA extensions. Returns the engine now in force.
    #[cfg(feature = "test-support")]
    pub fn force(engine: Engine) -> Engine {
        let _ = BEST.set(engine);
        Engine::best()
    }

    /// Every engine this CPU can run (for benchmarks and tests).
    pub fn available() -> Vec<Engine> {
        let mut v = vec![Engine::OneByOne];
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            v.push(Engine::EightLanes);
        }
        v
    }

    /// A short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Engine::OneByOne => "sha2 one at a time",
            Engine::EightLanes => "eight AVX2 lanes",
        }
    }
}

/// SHA-256(`prefix` ‖ m) of each message, appended to `out` in order, with
/// the fastest engine this CPU offers.
pub fn hash_all<'a, I>(prefix: u8, messages: I, out: &mut Vec<Hash>)
where
    I: IntoIterator<Item = &'a [u8]>,
{
    hash_all_with(Engine::best(), prefix, messages, out);
}

/// [`hash_all`] with a given engine. An engine this CPU cannot run falls
/// back to `sha2`.
pub fn hash_all_with<'a, I>(engine: Engine, prefix: u8, messages: I, out: &mut Vec<Hash>)
where
    I: IntoIterator<Item = &'a [u8]>,
{
    match engine {
        #[cfg(target_arch = "x86_64")]
        Engine::EightLanes if std::arch::is_x86_feature_detected!("avx2") => {
            let messages: Vec<&[u8]> = messages.into_iter().collect();
            let at = out.len();
            out.resize(at + messages.len(), [0; 32]);
            // SAFETY: AVX2 is present (checked just above), which is all
            // `x8::hash` needs; it touches memory only through safe code.
            #[allow(unsafe_code)]
            unsafe {
                x8::hash(prefix, &messages, &mut out[at..]);
            }
        }
        _ => out.extend(messages.into_iter().map(|m| one(prefix, m))),
    }
}

/// SHA-256(`prefix` ‖ `m`) with `sha2`.
pub fn one(prefix: u8, m: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([prefix]);
    h.update(m);
    h.finalize().into()
}

#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
/// The 64-byte block `k` of the padded message `prefix ‖ m`, which has
/// `blocks(m.len())` blocks.
fn fill_block(prefix: u8, m: &[u8], k: usize, out: &mut [u8; 64]) {
    let len = m.len() + 1;
    let start = 64 * k;
    if start + 64 <= len {
        if k == 0 {
            out[0] = prefix;
            out[1..].copy_from_slice(&m[..63]);
        } else {
            out.copy_from_slice(&m[start - 1..start + 63]);
        }
        return;
    }
    // The tail: the last bytes, 0x80, zeros, and the bit length in the
    // last block's final eight bytes.
    out.fill(0);
    if start < len {
        let n = len - start;
        if k == 0 {
            out[0] = prefix;
            out[1..n].copy_from_slice(m);
        } else {
            out[..n].copy_from_slice(&m[start - 1..]);
        }
    }
    if (start..start + 64).contains(&len) {
        out[len - start] = 0x80;
    }
    if k + 1 == blocks(m.len()) {
        out[56..].copy_from_slice(&((len as u64) * 8).to_be_bytes());
    }
}

#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
/// Blocks in the padded message `prefix ‖ m` for `m` of `n` bytes.
fn blocks(n: usize) -> usize {
    (n + 1 + 9).div_ceil(64)
}

#[cfg(target_arch = "x86_64")]
mod x8 {
    use std::arch::x86_64::*;

    use super::{blocks, fill_block};
    use crate::merkle::Hash;

    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    const H0: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];

    macro_rules! rotr {
        ($x:expr, $n:literal) => {
            _mm256_or_si256(
                _mm256_srli_epi32::<$n>($x),
                _mm256_slli_epi32::<{ 32 - $n }>($x),
            )
        };
    }

    #[target_feature(enable = "avx2")]
    fn xor3(a: __m256i, b: __m256i, c: __m256i) -> __m256i {
        _mm256_xor_si256(_mm256_xor_si256(a, b), c)
    }

    #[target_feature(enable = "avx2")]
    fn add(a: __m256i, b: __m256i) -> __m256i {
        _mm256_add_epi32(a, b)
    }

    #[target_feature(enable = "avx2")]
    fn splat(x: u32) -> __m256i {
        _mm256_set1_epi32(x as i32)
    }

    /// Word `t` (big-endian) of each lane's block.
    #[target_feature(enable = "avx2")]
    fn word(b: &[[u8; 64]; 8], t: usize) -> __m256i {
        let w = |l: usize| {
            i32::from_be_bytes([
                b[l][4 * t],
                b[l][4 * t + 1],
                b[l][4 * t + 2],
                b[l][4 * t + 3],
            ])
        };
        _mm256_setr_epi32(w(0), w(1), w(2), w(3), w(4), w(5), w(6), w(7))
    }

    /// One compression of each lane's block into each lane's state.
    #[target_feature(enable = "avx2")]
    fn compress(s: &mut [__m256i; 8], b: &[[u8; 64]; 8]) {
        let mut w = [_mm256_setzero_si256(); 16];
        for (t, wt) in w.iter_mut().enumerate() {
            *wt = word(b, t);
        }
        let [mut a, mut bb, mut c, mut d, mut e, mut f, mut g, mut h] = *s;
        for (t, k) in K.iter().enumerate() {
            let wt = if t < 16 {
                w[t]
            } else {
                let w15 = w[(t + 1) % 16];
                let w2 = w[(t + 14) % 16];
                let s0 = xor3(rotr!(w15, 7), rotr!(w15, 18), _mm256_srli_epi32::<3>(w15));
                let s1 = xor3(rotr!(w2, 17), rotr!(w2, 19), _mm256_srli_epi32::<10>(w2));
                let v = add(add(w[t % 16], s0), add(w[(t + 9) % 16], s1));
                w[t % 16] = v;
                v
            };
            let big_s1 = xor3(rotr!(e, 6), rotr!(e, 11), rotr!(e, 25));
            let ch = _mm256_xor_si256(_mm256_and_si256(e, f), _mm256_andnot_si256(e, g));
            let t1 = add(add(add(h, big_s1), add(ch, splat(*k))), wt);
            let big_s0 = xor3(rotr!(a, 2), rotr!(a, 13), rotr!(a, 22));
            let maj = _mm256_or_si256(
                _mm256_and_si256(a, bb),
                _mm256_and_si256(c, _mm256_or_si256(a, bb)),
            );
            let t2 = add(big_s0, maj);
            h = g;
            g = f;
            f = e;
            e = add(d, t1);
            d = c;
            c = bb;
            bb = a;
            a = add(t1, t2);
        }
        let out = [a, bb, c, d, e, f, g, h];
        for (x, y) in s.iter_mut().zip(out) {
            *x = add(*x, y);
        }
    }

    /// The eight lanes of `v`.
    #[target_feature(enable = "avx2")]
    fn lanes(v: __m256i) -> [u32; 8] {
        [
            _mm256_extract_epi32::<0>(v) as u32,
            _mm256_extract_epi32::<1>(v) as u32,
            _mm256_extract_epi32::<2>(v) as u32,
            _mm256_extract_epi32::<3>(v) as u32,
            _mm256_extract_epi32::<4>(v) as u32,
            _mm256_extract_epi32::<5>(v) as u32,
            _mm256_extract_epi32::<6>(v) as u32,
            _mm256_extract_epi32::<7>(v) as u32,
        ]
    }

    /// A lane's message: its index, the next block, and how many it has.
    #[derive(Clone, Copy)]
    struct Job {
        index: usize,
        block: usize,
        blocks: usize,
    }

    /// SHA-256(`prefix` ‖ m) of each message into `out` (same length).
    #[target_feature(enable = "avx2")]
    pub(super) fn hash(prefix: u8, messages: &[&[u8]], out: &mut [Hash]) {
        let mut jobs: [Option<Job>; 8] = [None; 8];
        let mut next = 0usize;
        let h0: [__m256i; 8] = H0.map(|x| splat(x));
        let mut state = h0;
        let mut buf = [[0u8; 64]; 8];
        loop {
            // Idle lanes take the next messages and start from H0.
            let mut fresh = [0i32; 8];
            for (l, job) in jobs.iter_mut().enumerate() {
                if job.is_none() && next < messages.len() {
                    *job = Some(Job {
                        index: next,
                        block: 0,
                        blocks: blocks(messages[next].len()),
                    });
                    next += 1;
                    fresh[l] = -1;
                }
            }
            if jobs.iter().all(Option::is_none) {
                return;
            }
            if fresh.iter().any(|m| *m != 0) {
                let mask = _mm256_setr_epi32(
                    fresh[0], fresh[1], fresh[2], fresh[3], fresh[4], fresh[5], fresh[6], fresh[7],
                );
                for (s, h) in state.iter_mut().zip(h0) {
                    *s = _mm256_blendv_epi8(*s, h, mask);
                }
            }
            for (l, job) in jobs.iter().enumerate() {
                if let Some(j) = job {
                    fill_block(prefix, messages[j.index], j.block, &mut buf[l]);
                }
            }
            compress(&mut state, &buf);
            let mut words: Option<[[u32; 8]; 8]> = None;
            for (l, job) in jobs.iter_mut().enumerate() {
                let Some(j) = job else { continue };
                j.block += 1;
                if j.block < j.blocks {
                    continue;
                }
                let words = words.get_or_insert_with(|| state.map(|v| lanes(v)));
                let digest = &mut out[j.index];
                for (i, w) in words.iter().enumerate() {
                    digest[4 * i..4 * i + 4].copy_from_slice(&w[l].to_be_bytes());
                }
                *job = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn block_counts_follow_the_padding_rule() {
        // prefix + m + 0x80 + 8 length bytes must fit.
        assert_eq!(blocks(0), 1);
        assert_eq!(blocks(54), 1);
        assert_eq!(blocks(55), 2);
        assert_eq!(blocks(118), 2);
        assert_eq!(blocks(119), 3);
    }

    #[test]
    fn every_engine_matches_sha2_at_every_block_boundary() {
        let data: Vec<u8> = (0..400u32).map(|i| (i * 7 + 3) as u8).collect();
        let msgs: Vec<&[u8]> = (0..400).map(|n| &data[..n]).collect();
        let want: Vec<Hash> = msgs.iter().map(|m| one(0, m)).collect();
        for engine in Engine::available() {
            for prefix in [0u8, 1] {
                let mut got = vec![[9u8; 32]];
                hash_all_with(engine, prefix, msgs.iter().copied(), &mut got);
                assert_eq!(got.len(), 401, "{engine:?} appends");
                assert_eq!(got[0], [9u8; 32], "{engine:?} keeps what was there");
                for (i, m) in msgs.iter().enumerate() {
                    assert_eq!(got[i + 1], one(prefix, m), "{engine:?} length {}", m.len());
                }
                if prefix == 0 {
                    assert_eq!(&got[1..], &want[..]);
                }
            }
        }
    }

    #[test]
    fn known_answers() {
        // SHA-256 of the empty string and of "abc", as one message each.
        let mut got = Vec::new();
        for engine in Engine::available() {
            got.clear();
            hash_all_with(engine, b'a', [&b"bc"[..], &b""[..]], &mut got);
            // FIPS 180-2, appendix B.1.
            let abc: Vec<u8> = (0..32)
                .map(|i| {
                    u8::from_str_radix(
                        &"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
                            [2 * i..2 * i + 2],
                        16,
                    )
                    .expect("hex")
                })
                .collect();
            assert_eq!(got[0][..], abc[..], "{engine:?}: SHA-256(\"abc\")");
            assert_eq!(got[1], one(b'a', b""));
        }
    }

    proptest! {
        #[test]
        fn batches_of_any_lengths_match_sha2(
            lens in proptest::collection::vec(0usize..700, 0..40),
            seed in any::<u8>(),
            prefix in any::<u8>(),
        ) {
            let data: Vec<Vec<u8>> = lens
                .iter()
                .enumerate()
                .map(|(i, n)| (0..*n).map(|k| (k as u8).wrapping_mul(31) ^ seed ^ i as u8).collect())
                .collect();
            let want: Vec<Hash> = data.iter().map(|m| one(prefix, m)).collect();
            for engine in Engine::available() {
                let mut got = Vec::new();
                hash_all_with(engine, prefix, data.iter().map(Vec::as_slice), &mut got);
                prop_assert_eq!(&got, &want, "{:?}", engine);
            }
        }
    }
}
