//! A coverage-free fuzzer on stable Rust, so that the fuzz targets' properties run in the
//! ordinary `cargo test` (libFuzzer needs nightly and never runs there). Without coverage
//! feedback random text alone never reaches deep into YAML or a plan, so most inputs are seeds
//! (the examples, the malformed corpus, saved plans, the regressions) under a stack of the
//! mutations libFuzzer makes: bit flips, interesting bytes, random and dictionary insertions,
//! deletions, duplications, splices and crossovers with another seed, line edits, truncation.
//! The rest are random bytes, random strings and runs of dictionary tokens.
//!
//! proptest generates and shrinks the inputs; [`fuzz`] bounds a run by cases AND wall time, in
//! two halves: one from a fixed RNG seed (the same inputs on every run), one from a fresh seed
//! (new inputs on every run; `MIP_FUZZ_SEED` replays one). `MIP_FUZZ_SECONDS` and
//! `MIP_FUZZ_CASES` change the budget for a longer local run. A failure is shrunk, written to a
//! file and reported with how to keep it as a regression under `fuzz/regressions/<target>/`,
//! which [`replay`] runs on every test run. Included with `#[path]` by
//! `crates/mip-inventory/tests/fuzz.rs` and `crates/mip-plan/tests/fuzz.rs`.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestError, TestRunner};
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The fixed RNG seed of the first half of a run.
const FIXED_SEED: u64 = 0x6d69_702d_6675_7a7a;

/// How long and how many inputs, at most, a run takes: whichever comes first.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Inputs checked, at most.
    pub cases: u32,
    /// Wall time, at most (shrinking a failure may take up to 30 s more).
    pub time: Duration,
}

impl Budget {
    /// This budget, or the one `MIP_FUZZ_CASES` / `MIP_FUZZ_SECONDS` ask for.
    fn or_env(self) -> Self {
        let var = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
        Budget {
            cases: var("MIP_FUZZ_CASES").map_or(self.cases, |n| u32::try_from(n).unwrap_or(u32::MAX)),
            time: var("MIP_FUZZ_SECONDS").map_or(self.time, Duration::from_secs),
        }
    }
}

/// What a target starts from: seeds to mutate and a dictionary of tokens to insert.
pub struct Corpus {
    seeds: Vec<Vec<u8>>,
    /// The target's syntax (as many chances as all the words together, which are many more).
    tokens: Vec<Vec<u8>>,
    /// The words of the seeds.
    words: Vec<Vec<u8>>,
}

impl Corpus {
    /// `seeds` (at least one) and `tokens` (at least one: the target's syntax, as libFuzzer's
    /// `-dict`), plus the words of the seeds (keys, enum values: what makes a mutant differ
    /// meaningfully).
    pub fn new(seeds: Vec<Vec<u8>>, tokens: &[&str]) -> Self {
        assert!(!seeds.is_empty() && !tokens.is_empty(), "a fuzz corpus needs a seed and a token");
        let mut words: Vec<Vec<u8>> = Vec::new();
        for seed in &seeds {
            for word in seed.split(|b| !(b.is_ascii_alphanumeric() || b"-_./".contains(b))) {
                if (2..=40).contains(&word.len()) && !words.iter().any(|w| w == word) {
                    words.push(word.to_vec());
                }
            }
        }
        if words.is_empty() {
            words.push(b"x".to_vec());
        }
        Corpus { seeds, tokens: tokens.iter().map(|t| t.as_bytes().to_vec()).collect(), words }
    }

    /// Token `t` (`t` < [`Self::tokens`]) or word `t - tokens.len()`.
    fn token(&self, t: usize) -> &[u8] {
        self.tokens.get(t).unwrap_or_else(|| &self.words[t - self.tokens.len()])
    }
}

/// Every file in `dir` (sorted by name), e.g. a seed directory.
pub fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
            (p, bytes)
        })
        .collect()
}

/// `fuzz/regressions/<target>/`: inputs that once failed, kept so they never fail again.
pub fn regressions_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions").join(target)
}

/// Checks every kept regression of `target` (returns how many, so the caller can require some).
pub fn replay(target: &str, check: impl Fn(&[u8])) -> usize {
    let files = files(&regressions_dir(target));
    for (path, bytes) in &files {
        if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(bytes))) {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            panic!("regression fuzz/regressions/{target}/{name} fails again: {}", message(&*panic));
        }
    }
    files.len()
}

/// One change to an input; positions and lengths are taken modulo what they index.
#[derive(Debug, Clone)]
enum Op {
    FlipBit(usize, u8),
    SetByte(usize, u8),
    InsertBytes(usize, Vec<u8>),
    /// Inserts [`Corpus::token`] `t`.
    InsertToken(usize, usize),
    Delete(usize, usize),
    /// Copies `len` bytes from `from` to `at`.
    Duplicate {
        from: usize,
        len: usize,
        at: usize,
    },
    /// Inserts `len` bytes of another seed, from `from`, at `at`.
    Splice {
        seed: usize,
        from: usize,
        len: usize,
        at: usize,
    },
    /// This input up to `at`, then another seed from `from`.
    Crossover {
        seed: usize,
        at: usize,
        from: usize,
    },
    DeleteLine(usize),
    DuplicateLine(usize),
    SwapLines(usize, usize),
    Truncate(usize),
}

/// One fuzz input, kept as the recipe (which shrinks well) rather than the bytes.
#[derive(Debug, Clone)]
enum Input {
    Bytes(Vec<u8>),
    Text(String),
    Tokens(Vec<usize>),
    Mutant { seed: usize, ops: Vec<Op> },
}

/// Bytes that often sit on a boundary: NUL, controls, quotes, brackets, UTF-8 lead bytes, 0xff.
const INTERESTING: &[u8] = b"\x00\x01\t\n\r \"#&'*,-.0123456789:<>?[\\]{|}~\x7f\x80\xc0\xe2\xef\xfe\xff";

fn op(seeds: usize, tokens: usize, words: usize) -> impl Strategy<Value = Op> {
    let at = any::<usize>;
    prop_oneof![
        1 => (at(), 0u8..8).prop_map(|(at, bit)| Op::FlipBit(at, bit)),
        1 => (at(), prop::sample::select(INTERESTING)).prop_map(|(at, b)| Op::SetByte(at, b)),
        1 => (at(), prop::collection::vec(any::<u8>(), 1..8)).prop_map(|(at, b)| Op::InsertBytes(at, b)),
        1 => (at(), 0..tokens).prop_map(|(at, t)| Op::InsertToken(at, t)),
        1 => (at(), tokens..tokens + words).prop_map(|(at, t)| Op::InsertToken(at, t)),
        1 => (at(), 1usize..64).prop_map(|(at, len)| Op::Delete(at, len)),
        1 => (at(), 1usize..256, at()).prop_map(|(from, len, at)| Op::Duplicate { from, len, at }),
        1 => (0..seeds, at(), 1usize..256, at()).prop_map(|(seed, from, len, at)| Op::Splice { seed, from, len, at }),
        1 => (0..seeds, at(), at()).prop_map(|(seed, at, from)| Op::Crossover { seed, at, from }),
        1 => at().prop_map(Op::DeleteLine),
        1 => at().prop_map(Op::DuplicateLine),
        1 => (at(), at()).prop_map(|(a, b)| Op::SwapLines(a, b)),
        1 => at().prop_map(Op::Truncate),
    ]
}

fn input(seeds: usize, tokens: usize, words: usize) -> impl Strategy<Value = Input> {
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..512).prop_map(Input::Bytes),
        1 => any::<String>().prop_map(Input::Text),
        1 => prop::collection::vec(0..tokens + words, 1..64).prop_map(Input::Tokens),
        8 => (0..seeds, prop::collection::vec(op(seeds, tokens, words), 1..8))
            .prop_map(|(seed, ops)| Input::Mutant { seed, ops }),
    ]
}

impl Corpus {
    fn bytes(&self, input: &Input) -> Vec<u8> {
        match input {
            Input::Bytes(b) => b.clone(),
            Input::Text(s) => s.as_bytes().to_vec(),
            Input::Tokens(ts) => ts.iter().flat_map(|&t| self.token(t).iter().copied()).collect(),
            Input::Mutant { seed, ops } => {
                ops.iter().fold(self.seeds[*seed].clone(), |data, op| self.apply(data, op))
            }
        }
    }

    fn apply(&self, mut data: Vec<u8>, op: &Op) -> Vec<u8> {
        // A position in (or at the end of) `data`.
        let pos = |at: usize, data: &[u8]| at % (data.len() + 1);
        match *op {
            Op::FlipBit(at, bit) if !data.is_empty() => {
                let i = at % data.len();
                data[i] ^= 1 << bit;
            }
            Op::SetByte(at, b) if !data.is_empty() => {
                let i = at % data.len();
                data[i] = b;
            }
            Op::InsertBytes(at, ref bytes) => {
                let i = pos(at, &data);
                data.splice(i..i, bytes.iter().copied());
            }
            Op::InsertToken(at, t) => {
                let i = pos(at, &data);
                data.splice(i..i, self.token(t).iter().copied());
            }
            Op::Delete(at, len) => {
                let i = pos(at, &data);
                data.drain(i..(i + len).min(data.len()));
            }
            Op::Duplicate { from, len, at } => {
                let from = pos(from, &data);
                let chunk = data[from..(from + len).min(data.len())].to_vec();
                let i = pos(at, &data);
                data.splice(i..i, chunk);
            }
            Op::Splice { seed, from, len, at } => {
                let other = &self.seeds[seed];
                let from = pos(from, other);
                let i = pos(at, &data);
                data.splice(i..i, other[from..(from + len).min(other.len())].iter().copied());
            }
            Op::Crossover { seed, at, from } => {
                let other = &self.seeds[seed];
                data.truncate(pos(at, &data));
                data.extend_from_slice(&other[pos(from, other)..]);
            }
            Op::DeleteLine(n) | Op::DuplicateLine(n) | Op::SwapLines(n, _) => {
                let mut lines: Vec<Vec<u8>> =
                    data.split_inclusive(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
                if lines.is_empty() {
                    return data;
                }
                let i = n % lines.len();
                match *op {
                    Op::DeleteLine(_) => drop(lines.remove(i)),
                    Op::DuplicateLine(_) => lines.insert(i, lines[i].clone()),
                    Op::SwapLines(_, m) => {
                        let j = m % lines.len();
                        lines.swap(i, j);
                    }
                    _ => unreachable!(),
                }
                data = lines.concat();
            }
            Op::Truncate(at) => data.truncate(pos(at, &data)),
            Op::FlipBit(..) | Op::SetByte(..) => {}
        }
        data
    }
}

/// Checks every seed, then fuzzes `check` (which panics on a broken property) for at most `budget`, half from a fixed
/// RNG seed and half from a fresh one; returns how many inputs were checked. On a failure,
/// panics with the shrunk input, also written to a file to keep under `fuzz/regressions/`.
pub fn fuzz(target: &str, corpus: &Corpus, budget: Budget, check: impl Fn(&[u8])) -> u64 {
    // The seeds as they are first, as libFuzzer reads its corpus.
    for (i, seed) in corpus.seeds.iter().enumerate() {
        if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(seed))) {
            panic!("{target}: seed {i} as it is: {}", message(&*panic));
        }
    }
    let budget = budget.or_env();
    let fresh = std::env::var("MIP_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| std::collections::hash_map::RandomState::new().build_hasher().finish());
    let half = Budget { cases: budget.cases.div_ceil(2), time: budget.time / 2 };
    [FIXED_SEED, fresh].into_iter().map(|seed| fuzz_from(target, corpus, half, seed, &check)).sum()
}

fn fuzz_from(target: &str, corpus: &Corpus, budget: Budget, seed: u64, check: &impl Fn(&[u8])) -> u64 {
    let config = Config {
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        max_shrink_time: 30_000,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let strategy = input(corpus.seeds.len(), corpus.tokens.len(), corpus.words.len());
    let started = Instant::now();
    let mut cases = 0;
    while cases < u64::from(budget.cases) && started.elapsed() < budget.time {
        let tree = strategy.new_tree(&mut runner).expect("the strategy never rejects");
        let outcome = runner.run_one(tree, |input| {
            check(&corpus.bytes(&input));
            Ok(())
        });
        match outcome {
            Ok(_) => cases += 1,
            Err(TestError::Abort(why)) => panic!("{target}: fuzzing aborted: {why}"),
            Err(TestError::Fail(why, input)) => {
                let bytes = corpus.bytes(&input);
                let file = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("fuzz-{target}-failure"));
                std::fs::write(&file, &bytes).expect("write the failing input");
                panic!(
                    "{target}: {why}\nafter {cases} inputs from RNG seed {seed} (MIP_FUZZ_SEED={seed} replays it)\n\
                     minimal input {input:?}:\n  b\"{}\"\nwritten to {}; keep it: cp it to fuzz/regressions/{target}/<what-it-is> and fix the bug",
                    bytes.escape_ascii(),
                    file.display(),
                );
            }
        }
    }
    cases
}

fn message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "(no message)".to_owned())
}
