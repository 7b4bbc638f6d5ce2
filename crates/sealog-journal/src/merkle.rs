//! The RFC 9162 Merkle tree: hashing, the append frontier, and inclusion,
//! consistency and range proofs.
//!
//! Leaf hash = SHA-256(0x00 ‖ leaf bytes); interior node = SHA-256(0x01 ‖
//! left ‖ right); the tree over `n` leaves splits at the largest power of two
//! smaller than `n` (RFC 9162 §2.1.1). Proof generation is written against
//! [`SubtreeSource`], so the same code serves the journal (which keeps
//! interior hashes on disk) and in-memory trees in tests.

use sha2::{Digest, Sha256};

use crate::error::ProofError;

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// SHA-256(0x00 ‖ leaf).
pub fn leaf_hash(leaf: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(leaf);
    h.finalize().into()
}

/// SHA-256(0x01 ‖ left ‖ right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut buf = [0u8; 65];
    buf[0] = 1;
    buf[1..33].copy_from_slice(left);
    buf[33..].copy_from_slice(right);
    Sha256::digest(buf).into()
}

/// The hash of the empty tree: SHA-256 of nothing.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two strictly smaller than `n` (n ≥ 2).
pub fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// MTH over leaf hashes held in memory.
pub fn root_of(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split_point(n as u64) as usize;
            node_hash(&root_of(&leaves[..k]), &root_of(&leaves[k..]))
        }
    }
}

/// The right edge of a growing tree: one perfect subtree per set bit of the
/// size. Appending costs one node hash amortised; the root is a fold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// (height, hash), tallest first.
    stack: Vec<(u32, Hash)>,
}

impl Frontier {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds a frontier of `size` leaves from its perfect subtrees,
    /// tallest first, as given by [`Frontier::subtrees`].
    ///
    /// # Errors
    /// [`ProofError::Malformed`] when the hashes do not match `size`'s bits.
    pub fn from_subtrees(size: u64, hashes: &[Hash]) -> Result<Self, ProofError> {
        let heights: Vec<u32> = (0..64).rev().filter(|b| size >> b & 1 == 1).collect();
        if heights.len() != hashes.len() {
            return Err(ProofError::Malformed("frontier does not match tree size"));
        }
        Ok(Self {
            size,
            stack: heights.into_iter().zip(hashes.iter().copied()).collect(),
        })
    }

    /// The perfect subtrees of this frontier, tallest first: (height, index
    /// at that height, hash).
    pub fn subtrees(&self) -> impl Iterator<Item = (u32, u64, Hash)> + '_ {
        let mut start = 0u64;
        self.stack.iter().map(move |(h, hash)| {
            let idx = start >> h;
            start += 1 << h;
            (*h, idx, *hash)
        })
    }

    /// Leaves in the tree.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf hash. `on_node(height, index, hash)` is called for
    /// every perfect subtree completed by this leaf (height ≥ 1).
    pub fn push(&mut self, leaf: Hash, mut on_node: impl FnMut(u32, u64, &Hash)) {
        let mut height = 0u32;
        let mut hash = leaf;
        let mut index = self.size;
        while let Some(&(h, left)) = self.stack.last() {
            if h != height {
                break;
            }
            self.stack.pop();
            hash = node_hash(&left, &hash);
            height += 1;
            index >>= 1;
            on_node(height, index, &hash);
        }
        self.stack.push((height, hash));
        self.size += 1;
    }

    /// Appends many leaf hashes: the same tree as [`Frontier::push`] of
    /// each in turn, with the interior nodes of each level hashed as one
    /// batch ([`crate::sha256x8`]). `on_node(height, index, hash)` is
    /// called for every perfect subtree completed (height ≥ 1), level by
    /// level: lowest first, and in index order within a level.
    pub fn extend(&mut self, leaves: &[Hash], mut on_node: impl FnMut(u32, u64, &Hash)) {
        if leaves.is_empty() {
            return;
        }
        // The stack holds one subtree per set bit of the size, tallest
        // first; take them out by height.
        let mut pending: Vec<Option<Hash>> = vec![None; 65];
        for (h, hash) in self.stack.drain(..) {
            pending[h as usize] = Some(hash);
        }
        let mut row: Vec<Hash> = leaves.to_vec();
        let mut start = self.size;
        let mut height = 0usize;
        let mut msgs: Vec<[u8; 64]> = Vec::new();
        while !row.is_empty() {
            // A row starting at an odd index completes the subtree waiting
            // on the stack at this height.
            if start & 1 == 1 {
                let left = pending[height]
                    .take()
                    .expect("an odd start has its left sibling on the stack");
                row.insert(0, left);
                start -= 1;
            }
            if row.len() % 2 == 1 {
                pending[height] = row.pop();
            }
            msgs.clear();
            msgs.extend(row.chunks_exact(2).map(|p| {
                let mut m = [0u8; 64];
                m[..32].copy_from_slice(&p[0]);
                m[32..].copy_from_slice(&p[1]);
                m
            }));
            row.clear();
            crate::sha256x8::hash_all(1, msgs.iter().map(|m| &m[..]), &mut row);
            start >>= 1;
            height += 1;
            for (i, hash) in row.iter().enumerate() {
                on_node(height as u32, start + i as u64, hash);
            }
        }
        self.size += leaves.len() as u64;
        self.stack = pending
            .into_iter()
            .enumerate()
            .rev()
            .filter_map(|(h, hash)| hash.map(|x| (h as u32, x)))
            .collect();
    }

    /// Appends a perfect subtree of `2^height` leaves whose root is `hash`
    /// (what retention keeps of removed records). The tree's size must be a
    /// multiple of `2^height`. `on_node` is called for the subtree itself
    /// (height ≥ 1) and every subtree it completes.
    ///
    /// # Errors
    /// [`ProofError::Malformed`] when the subtree is not aligned.
    pub fn push_subtree(
        &mut self,
        height: u32,
        hash: Hash,
        mut on_node: impl FnMut(u32, u64, &Hash),
    ) -> Result<(), ProofError> {
        if height >= 63 || !self.size.is_multiple_of(1 << height) {
            return Err(ProofError::Malformed("subtree is not aligned to its size"));
        }
        let mut h = height;
        let mut hash = hash;
        let mut index = self.size >> height;
        if h > 0 {
            on_node(h, index, &hash);
        }
        while let Some(&(sh, left)) = self.stack.last() {
            if sh != h {
                break;
            }
            self.stack.pop();
            hash = node_hash(&left, &hash);
            h += 1;
            index >>= 1;
            on_node(h, index, &hash);
        }
        self.stack.push((h, hash));
        self.size += 1 << height;
        Ok(())
    }

    /// MTH of the leaves pushed so far.
    pub fn root(&self) -> Hash {
        let mut iter = self.stack.iter().rev();
        let Some(&(_, mut acc)) = iter.next() else {
            return empty_root();
        };
        for (_, left) in iter {
            acc = node_hash(left, &acc);
        }
        acc
    }
}

/// `MTH(D[start:end])` from `items`: perfect subtrees `(first leaf,
/// height, hash)` that tile `[start, end)` in order (a leaf is height 0).
///
/// # Errors
/// [`ProofError::Malformed`] when the items do not tile the range, or one
/// straddles a split of the tree (its parts are not known).
pub fn root_of_pieces(
    start: u64,
    end: u64,
    items: &[(u64, u32, Hash)],
) -> Result<Hash, ProofError> {
    let bad = ProofError::Malformed("subtree hashes do not cover the range");
    match items {
        [] => Err(bad),
        [(at, h, hash)] if *at == start && end.checked_sub(start) == Some(1 << h) => Ok(*hash),
        _ if end - start <= 1 => Err(bad),
        _ => {
            let mid = start + split_point(end - start);
            let cut = items.partition_point(|(at, _, _)| *at < mid);
            let (left, right) = items.split_at(cut);
            match left.last() {
                Some((at, h, _)) if at + (1u64 << h) == mid => {}
                _ => {
                    return Err(ProofError::Malformed(
                        "a kept subtree straddles a split of the tree",
                    ))
                }
            }
            Ok(node_hash(
                &root_of_pieces(start, mid, left)?,
                &root_of_pieces(mid, end, right)?,
            ))
        }
    }
}

/// Anything that can produce `MTH(D[start:end])` for the tree's leaves.
pub trait SubtreeSource {
    /// The error reading hashes can fail with.
    type Error: From<ProofError>;
    /// MTH over leaves `[start, end)`, `start < end`.
    ///
    /// # Errors
    /// Whatever reading the underlying storage fails with.
    fn subtree(&self, start: u64, end: u64) -> Result<Hash, Self::Error>;
}

/// In-memory leaf hashes as a [`SubtreeSource`].
#[derive(Debug, Clone, Copy)]
pub struct MemTree<'a>(pub &'a [Hash]);

impl SubtreeSource for MemTree<'_> {
    type Error = ProofError;
    fn subtree(&self, start: u64, end: u64) -> Result<Hash, ProofError> {
        self.0
            .get(start as usize..end as usize)
            .map(root_of)
            .ok_or(ProofError::Malformed("range outside the tree"))
    }
}

/// The audit path for leaf `index` in the tree of `size` leaves (RFC 9162
/// §2.1.3.1), bottom-up.
///
/// # Errors
/// [`ProofError::OutOfRange`] unless `index < size`; storage errors.
pub fn inclusion_proof<S: SubtreeSource>(
    src: &S,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, S::Error> {
    if index >= size {
        return Err(ProofError::OutOfRange { index, size }.into());
    }
    let mut path = Vec::new();
    let (mut lo, mut hi, mut m) = (0u64, size, index);
    // Walk down, collecting siblings top-down; reverse at the end.
    while hi - lo > 1 {
        let k = split_point(hi - lo);
        if m < k {
            path.push(src.subtree(lo + k, hi)?);
            hi = lo + k;
        } else {
            path.push(src.subtree(lo, lo + k)?);
            lo += k;
            m -= k;
        }
    }
    path.reverse();
    Ok(path)
}

/// The consistency proof from size `old` to size `new` (RFC 9162 §2.1.4.1).
///
/// # Errors
/// [`ProofError::OutOfRange`] unless `0 < old <= new`; storage errors.
pub fn consistency_proof<S: SubtreeSource>(
    src: &S,
    old: u64,
    new: u64,
) -> Result<Vec<Hash>, S::Error> {
    if old == 0 || old > new {
        return Err(ProofError::OutOfRange {
            index: old,
            size: new,
        }
        .into());
    }
    let mut proof = Vec::new();
    let (mut lo, mut hi, mut m, mut whole) = (0u64, new, old, true);
    loop {
        if m == hi - lo {
            if !whole {
                proof.push(src.subtree(lo, hi)?);
            }
            break;
        }
        let k = split_point(hi - lo);
        if m <= k {
            proof.push(src.subtree(lo + k, hi)?);
            hi = lo + k;
        } else {
            proof.push(src.subtree(lo, lo + k)?);
            lo += k;
            m -= k;
            whole = false;
        }
    }
    proof.reverse();
    Ok(proof)
}

/// Checks an inclusion proof (RFC 9162 §2.1.3.2).
///
/// # Errors
/// [`ProofError`] saying why the proof does not hold.
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    path: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::OutOfRange { index, size });
    }
    let (mut f_n, mut s_n) = (index, size - 1);
    let mut r = *leaf;
    for p in path {
        if s_n == 0 {
            return Err(ProofError::Malformed("inclusion path too long"));
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n != 0 {
        return Err(ProofError::Malformed("inclusion path too short"));
    }
    if &r != root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Checks a consistency proof between two tree heads (RFC 9162 §2.1.4.2).
///
/// # Errors
/// [`ProofError`] saying why the proof does not hold.
pub fn verify_consistency(
    old: u64,
    new: u64,
    proof: &[Hash],
    old_root: &Hash,
    new_root: &Hash,
) -> Result<(), ProofError> {
    if old == 0 || old > new {
        return Err(ProofError::OutOfRange {
            index: old,
            size: new,
        });
    }
    if old == new {
        if !proof.is_empty() {
            return Err(ProofError::Malformed(
                "proof between equal sizes must be empty",
            ));
        }
        return if old_root == new_root {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    let mut path = proof;
    // If old is a power of two, old_root is the first node of the path.
    let with_old;
    if old.is_power_of_two() {
        let mut v = Vec::with_capacity(proof.len() + 1);
        v.push(*old_root);
        v.extend_from_slice(proof);
        with_old = v;
        path = &with_old;
    }
    let Some((first, rest)) = path.split_first() else {
        return Err(ProofError::Malformed("consistency proof is empty"));
    };
    let (mut f_n, mut s_n) = (old - 1, new - 1);
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if s_n == 0 {
            return Err(ProofError::Malformed("consistency proof too long"));
        }
        if f_n & 1 == 1 || f_n == s_n {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n != 0 {
        return Err(ProofError::Malformed("consistency proof too short"));
    }
    if &fr != old_root || &sr != new_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// The hashes needed to recompute the root of a `size`-leaf tree from the
/// leaves `[from, to)` alone: MTH of every maximal subtree outside that
/// range, in the order [`root_from_range`] consumes them.
///
/// # Errors
/// [`ProofError::OutOfRange`] unless `from < to <= size`; storage errors.
pub fn range_proof<S: SubtreeSource>(
    src: &S,
    from: u64,
    to: u64,
    size: u64,
) -> Result<Vec<Hash>, S::Error> {
    if from >= to || to > size {
        return Err(ProofError::OutOfRange { index: from, size }.into());
    }
    let mut out = Vec::new();
    collect_range(src, 0, size, from, to, &mut out)?;
    Ok(out)
}

fn collect_range<S: SubtreeSource>(
    src: &S,
    lo: u64,
    hi: u64,
    from: u64,
    to: u64,
    out: &mut Vec<Hash>,
) -> Result<(), S::Error> {
    if hi <= from || lo >= to {
        out.push(src.subtree(lo, hi)?);
    } else if lo < from || hi > to {
        let k = split_point(hi - lo);
        collect_range(src, lo, lo + k, from, to, out)?;
        collect_range(src, lo + k, hi, from, to, out)?;
    }
    Ok(())
}

/// Recomputes the root of a `size`-leaf tree from the leaf hashes of
/// `[from, from + leaves.len())` and a [`range_proof`].
///
/// # Errors
/// [`ProofError::Malformed`] when the proof has too few or too many hashes.
pub fn root_from_range(
    leaves: &[Hash],
    from: u64,
    size: u64,
    proof: &[Hash],
) -> Result<Hash, ProofError> {
    let to = from + leaves.len() as u64;
    if leaves.is_empty() || to > size {
        return Err(ProofError::OutOfRange { index: from, size });
    }
    let mut it = proof.iter();
    let root = fold_range(leaves, 0, size, from, to, &mut it)?;
    if it.next().is_some() {
        return Err(ProofError::Malformed("range proof has extra hashes"));
    }
    Ok(root)
}

fn fold_range<'a>(
    leaves: &[Hash],
    lo: u64,
    hi: u64,
    from: u64,
    to: u64,
    it: &mut impl Iterator<Item = &'a Hash>,
) -> Result<Hash, ProofError> {
    if hi <= from || lo >= to {
        return it
            .next()
            .copied()
            .ok_or(ProofError::Malformed("range proof is missing hashes"));
    }
    if lo >= from && hi <= to {
        return Ok(root_of(&leaves[(lo - from) as usize..(hi - from) as usize]));
    }
    let k = split_point(hi - lo);
    let l = fold_range(leaves, lo, lo + k, from, to, it)?;
    let r = fold_range(leaves, lo + k, hi, from, to, it)?;
    Ok(node_hash(&l, &r))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_le_bytes())).collect()
    }

    #[test]
    fn rfc_known_answer() {
        // RFC 6962 test vector: empty tree hash and a one-leaf tree of "".
        assert_eq!(
            hex(&empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex(&leaf_hash(b"")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
    }

    fn hex(h: &Hash) -> String {
        h.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn frontier_matches_recursive_root() {
        let l = leaves(1000);
        let mut f = Frontier::new();
        for (i, h) in l.iter().enumerate() {
            f.push(*h, |_, _, _| {});
            assert_eq!(f.root(), root_of(&l[..=i]));
        }
        let rebuilt = Frontier::from_subtrees(
            f.size(),
            &f.subtrees().map(|(_, _, h)| h).collect::<Vec<_>>(),
        )
        .expect("same size");
        assert_eq!(rebuilt, f);
    }

    #[test]
    fn frontier_reports_completed_nodes() {
        let l = leaves(8);
        let mut f = Frontier::new();
        let mut seen = Vec::new();
        for h in &l {
            f.push(*h, |height, index, hash| seen.push((height, index, *hash)));
        }
        assert!(seen.contains(&(3, 0, root_of(&l))));
        assert!(seen.contains(&(2, 1, root_of(&l[4..8]))));
        assert_eq!(seen.len(), 7);
    }

    proptest! {
        #[test]
        fn extend_matches_pushing_one_by_one(
            before in 0usize..600,
            subtree in 0u32..4,
            batches in proptest::collection::vec(0usize..300, 1..5),
        ) {
            let all = leaves((before + batches.iter().sum::<usize>()) as u64);
            let mut one = Frontier::new();
            let mut many = Frontier::new();
            let mut nodes_one = Vec::new();
            let mut nodes_many = Vec::new();
            for h in &all[..before] {
                one.push(*h, |_, _, _| {});
                many.push(*h, |_, _, _| {});
            }
            // A kept subtree (what retention leaves) where it fits.
            if subtree > 0 && (before as u64).is_multiple_of(1 << subtree) {
                let root = root_of(&all[..1 << subtree]);
                one.push_subtree(subtree, root, |_, _, _| {}).expect("aligned");
                many.push_subtree(subtree, root, |_, _, _| {}).expect("aligned");
            }
            let mut at = before;
            for n in batches {
                for h in &all[at..at + n] {
                    one.push(*h, |height, index, hash| nodes_one.push((height, index, *hash)));
                }
                many.extend(&all[at..at + n], |height, index, hash| {
                    nodes_many.push((height, index, *hash));
                });
                at += n;
                prop_assert_eq!(&one, &many);
                prop_assert_eq!(one.root(), many.root());
            }
            // Sorted by their place in the tree file, the nodes `extend`
            // reports come in the order `push` completes them (the commit
            // path relies on it).
            let pos = |n: &(u32, u64, Hash)| crate::tree_file::position(n.0, n.1);
            nodes_many.sort_by_key(pos);
            prop_assert_eq!(nodes_one, nodes_many);
        }

        #[test]
        fn inclusion_round_trip(size in 1u64..300, pick in any::<u64>(), bad in any::<usize>()) {
            let l = leaves(size);
            let idx = pick % size;
            let root = root_of(&l);
            let path = inclusion_proof(&MemTree(&l), idx, size).expect("in range");
            prop_assert!(verify_inclusion(&l[idx as usize], idx, size, &path, &root).is_ok());
            // Any change breaks it: a hash, the index, the size.
            if !path.is_empty() {
                let mut p = path.clone();
                let i = bad % p.len();
                p[i][0] ^= 1;
                prop_assert!(verify_inclusion(&l[idx as usize], idx, size, &p, &root).is_err());
            }
            if size > 1 {
                let other = (idx + 1) % size;
                prop_assert!(verify_inclusion(&l[idx as usize], other, size, &path, &root).is_err());
            }
            // A different size means a different signed root: the proof must not hold there.
            let bigger = leaves(size + 1);
            prop_assert!(verify_inclusion(&l[idx as usize], idx, size + 1, &path, &root_of(&bigger)).is_err());
            if idx + 1 < size {
                prop_assert!(verify_inclusion(&l[idx as usize], idx, size - 1, &path, &root_of(&l[..size as usize - 1])).is_err());
            }
        }

        #[test]
        fn consistency_round_trip(new in 1u64..300, pick in any::<u64>(), bad in any::<usize>()) {
            let l = leaves(new);
            let old = pick % new + 1;
            let (r_old, r_new) = (root_of(&l[..old as usize]), root_of(&l));
            let proof = consistency_proof(&MemTree(&l), old, new).expect("in range");
            prop_assert!(verify_consistency(old, new, &proof, &r_old, &r_new).is_ok());
            if !proof.is_empty() {
                let mut p = proof.clone();
                let i = bad % p.len();
                p[i][31] ^= 0x80;
                prop_assert!(verify_consistency(old, new, &p, &r_old, &r_new).is_err());
            }
            if old < new {
                let r_old1 = root_of(&l[..old as usize + 1]);
                prop_assert!(verify_consistency(old + 1, new, &proof, &r_old1, &r_new).is_err());
                if old < new - 1 {
                    let r_new1 = root_of(&l[..new as usize - 1]);
                    prop_assert!(verify_consistency(old, new - 1, &proof, &r_old, &r_new1).is_err());
                }
            }
            let mut wrong = r_old;
            wrong[0] ^= 1;
            prop_assert!(verify_consistency(old, new, &proof, &wrong, &r_new).is_err());
        }

        #[test]
        fn range_round_trip(size in 1u64..300, a in any::<u64>(), b in any::<u64>()) {
            let l = leaves(size);
            let from = a % size;
            let to = from + 1 + b % (size - from);
            let proof = range_proof(&MemTree(&l), from, to, size).expect("in range");
            let root = root_from_range(&l[from as usize..to as usize], from, size, &proof)
                .expect("well formed");
            prop_assert_eq!(root, root_of(&l));
            let mut changed = l[from as usize..to as usize].to_vec();
            changed[0][5] ^= 1;
            let root2 = root_from_range(&changed, from, size, &proof).expect("well formed");
            prop_assert_ne!(root2, root_of(&l));
        }
    }
}
