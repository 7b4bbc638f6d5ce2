//! The embedded journal as a conformance backend.

use sealog_journal::conformance;

use crate::util;

/// The embedded journal as a conformance backend: one temporary
/// directory per store.
#[derive(Default)]
pub struct Disk {
    dirs: Vec<tempfile::TempDir>,
}

impl conformance::Harness for Disk {
    type Store = sealog_journal::Journal;

    fn fresh(&mut self) -> Self::Store {
        let d = tempfile::tempdir().expect("tempdir");
        let j = util::open(d.path());
        self.dirs.push(d);
        j
    }

    fn reopen(&mut self, s: Self::Store) -> Self::Store {
        let dir = s.dir().to_path_buf();
        drop(s);
        util::open(&dir)
    }

    fn tamper(&mut self, s: &Self::Store, seq: u64) {
        let changed = std::cell::Cell::new(false);
        for entry in std::fs::read_dir(s.dir()).expect("journal dir") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "seg") {
                sealog_journal::tamper::rewrite_blocks(
                    &path,
                    sealog_journal::tamper::Hints::Recompute,
                    |first, lines| {
                        if (first..first + lines.len() as u64).contains(&seq) {
                            let l = &mut lines[(seq - first) as usize];
                            let at = l.len() - 3;
                            l[at] ^= 1;
                            changed.set(true);
                        }
                    },
                )
                .expect("rewrite");
            }
        }
        assert!(changed.get(), "seq {seq} was found to tamper with");
    }

    fn verify(&mut self, s: &Self::Store) -> sealog_journal::verify::Report {
        sealog_journal::verify::verify_dir(
            s.dir(),
            util::REALM,
            s.verifier(),
            &sealog_journal::verify::Evidence {
                require_mark: true,
                ..Default::default()
            },
            &|_| {},
        )
        .expect("verify")
    }
}
