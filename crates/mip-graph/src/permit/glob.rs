//! The two glob dialects Argo CD matches project rules with.
//!
//! - [`Glob::new`]: `github.com/gobwas/glob`, used for repositories and destinations. `*` is any
//!   run of characters except the separator (if any), `**` any run at all, `?` one character
//!   except the separator, `[abc]` / `[!abc]` a list, `[a-z]` / `[!a-z]` one range (a list and
//!   a range cannot be combined), `{a,b}` alternatives (nested, possibly empty; a group left
//!   open at the end is closed there, as gobwas's parser does), `\` escapes the next character.
//!   `,` and `}` are literal outside a group.
//! - [`Glob::path`]: Go's `filepath.Match`, used for the group, kind and name of resource
//!   rules. `*` and `?` never cross `/`, classes are `[^...]` with any number of characters and
//!   ranges, no alternatives.
//!
//! Matching is a backtracking walk over the pattern (exponential only for contrived patterns
//! with many `*`; project rules are short).

use std::fmt;

/// A pattern that does not compile. Argo CD logs it and treats the rule as matching nothing,
/// which is what [`glob_match`] does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid glob `{pattern}`: {reason}")]
pub struct GlobError {
    /// The pattern as written.
    pub pattern: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Char(char),
    /// `*`: any run without the separator.
    Any,
    /// `**` (gobwas only): any run.
    Super,
    /// `?`: one character other than the separator.
    Single,
    /// `[...]`: one character in (or, negated, not in) the ranges.
    Class {
        ranges: Vec<(char, char)>,
        negated: bool,
    },
    /// `{a,b}`: one of the alternatives.
    Alternatives(Vec<Vec<Token>>),
}

/// A compiled pattern.
#[derive(Clone, PartialEq, Eq)]
pub struct Glob {
    tokens: Vec<Token>,
    separator: Option<char>,
}

impl fmt::Debug for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Glob").field("tokens", &self.tokens).field("separator", &self.separator).finish()
    }
}

/// Gobwas glob match without a separator, as Argo CD matches destinations; a pattern that
/// does not compile matches nothing.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    Glob::new(pattern, None).is_ok_and(|g| g.is_match(text))
}

impl Glob {
    /// Compiles a gobwas pattern; `*` and `?` do not match `separator`.
    ///
    /// # Errors
    /// A class that is empty, unterminated, mixes a list with a range, or has a range whose
    /// end is below its start.
    pub fn new(pattern: &str, separator: Option<char>) -> Result<Self, GlobError> {
        let mut p = Parser { chars: pattern.chars().collect(), pos: 0, pattern };
        let (tokens, _) = p.gobwas_sequence(0)?;
        Ok(Glob { tokens, separator })
    }

    /// Compiles a `filepath.Match` pattern (separator `/`).
    ///
    /// # Errors
    /// An empty or unterminated class, a class item starting with `-` or `]`, or a trailing `\`.
    pub fn path(pattern: &str) -> Result<Self, GlobError> {
        let mut p = Parser { chars: pattern.chars().collect(), pos: 0, pattern };
        Ok(Glob { tokens: p.path_sequence()?, separator: Some('/') })
    }

    /// Whether the whole of `text` matches.
    pub fn is_match(&self, text: &str) -> bool {
        let text: Vec<char> = text.chars().collect();
        matches(&self.tokens, &text, self.separator, &|rest: &[char]| rest.is_empty())
    }
}

/// Continuation-passing match: `then` receives what is left of the text after `tokens`.
fn matches(tokens: &[Token], text: &[char], sep: Option<char>, then: &dyn Fn(&[char]) -> bool) -> bool {
    let Some((first, rest)) = tokens.split_first() else { return then(text) };
    let next = |t: &[char]| matches(rest, t, sep, then);
    let one = |ok: &dyn Fn(char) -> bool| text.first().is_some_and(|c| ok(*c)) && next(&text[1..]);
    match first {
        Token::Char(c) => one(&|t| t == *c),
        Token::Single => one(&|t| Some(t) != sep),
        Token::Class { ranges, negated } => {
            one(&|t| ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&t)) != *negated)
        }
        Token::Super => (0..=text.len()).any(|i| next(&text[i..])),
        Token::Any => {
            for i in 0..=text.len() {
                if next(&text[i..]) {
                    return true;
                }
                if i < text.len() && Some(text[i]) == sep {
                    return false;
                }
            }
            false
        }
        Token::Alternatives(alts) => alts.iter().any(|alt| matches(alt, text, sep, &next)),
    }
}

struct Parser<'p> {
    chars: Vec<char>,
    pos: usize,
    pattern: &'p str,
}

impl Parser<'_> {
    fn err(&self, reason: &'static str) -> GlobError {
        GlobError { pattern: self.pattern.to_owned(), reason }
    }

    fn next(&mut self) -> Option<char> {
        let c = self.chars.get(self.pos).copied();
        self.pos += usize::from(c.is_some());
        c
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    /// One alternative (or the whole pattern at depth 0), up to an unescaped `,` or `}` inside
    /// a group, or the end. Returns the tokens and the character that ended them.
    fn gobwas_sequence(&mut self, depth: usize) -> Result<(Vec<Token>, Option<char>), GlobError> {
        let mut out = Vec::new();
        while let Some(c) = self.next() {
            match c {
                ',' | '}' if depth > 0 => return Ok((out, Some(c))),
                '\\' => out.extend(self.next().map(Token::Char)),
                '*' if self.peek() == Some('*') => {
                    self.pos += 1;
                    out.push(Token::Super);
                }
                '*' => out.push(Token::Any),
                '?' => out.push(Token::Single),
                '[' => out.push(self.gobwas_class()?),
                '{' => {
                    let mut alts = Vec::new();
                    loop {
                        let (alt, end) = self.gobwas_sequence(depth + 1)?;
                        alts.push(alt);
                        if end != Some(',') {
                            break;
                        }
                    }
                    out.push(Token::Alternatives(alts));
                }
                c => out.push(Token::Char(c)),
            }
        }
        Ok((out, None))
    }

    /// After `[`: `!`?, then either `lo-hi` or a list of characters, then `]`.
    fn gobwas_class(&mut self) -> Result<Token, GlobError> {
        let negated = self.peek() == Some('!');
        self.pos += usize::from(negated);
        let unterminated = self.err("unterminated `[`");
        let first = self.next().ok_or_else(|| unterminated.clone())?;
        if self.peek() == Some('-') {
            self.pos += 1;
            let hi = self.next().ok_or_else(|| unterminated.clone())?;
            if self.next() != Some(']') {
                return Err(self.err("a range class holds one `lo-hi` range"));
            }
            if hi < first {
                return Err(self.err("range end below its start"));
            }
            return Ok(Token::Class { ranges: vec![(first, hi)], negated });
        }
        self.pos -= 1;
        let mut ranges = Vec::new();
        loop {
            match self.next() {
                None => return Err(unterminated),
                Some(']') => break,
                Some('\\') => ranges.extend(self.next().map(|c| (c, c))),
                Some(c) => ranges.push((c, c)),
            }
        }
        if ranges.is_empty() {
            return Err(self.err("empty class"));
        }
        Ok(Token::Class { ranges, negated })
    }

    fn path_sequence(&mut self) -> Result<Vec<Token>, GlobError> {
        let mut out = Vec::new();
        while let Some(c) = self.next() {
            out.push(match c {
                '*' => Token::Any,
                '?' => Token::Single,
                '[' => self.path_class()?,
                '\\' => Token::Char(self.next().ok_or_else(|| self.err("trailing `\\`"))?),
                c => Token::Char(c),
            });
        }
        Ok(out)
    }

    /// After `[`: `^`?, then one or more `c` / `lo-hi` items (`\` escapes), then `]`.
    fn path_class(&mut self) -> Result<Token, GlobError> {
        let negated = self.peek() == Some('^');
        self.pos += usize::from(negated);
        let mut ranges = Vec::new();
        loop {
            if self.peek() == Some(']') && !ranges.is_empty() {
                self.pos += 1;
                return Ok(Token::Class { ranges, negated });
            }
            let lo = self.path_class_char()?;
            let hi = if self.peek() == Some('-') {
                self.pos += 1;
                self.path_class_char()?
            } else {
                lo
            };
            if hi < lo {
                return Err(self.err("range end below its start"));
            }
            ranges.push((lo, hi));
        }
    }

    fn path_class_char(&mut self) -> Result<char, GlobError> {
        match self.next() {
            None => Err(self.err("unterminated `[`")),
            Some('-' | ']') => Err(self.err("class item starts with `-` or `]`")),
            Some('\\') => self.next().ok_or_else(|| self.err("unterminated `[`")),
            Some(c) => Ok(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gob(pattern: &str, sep: Option<char>, text: &str) -> bool {
        Glob::new(pattern, sep).unwrap_or_else(|e| panic!("{e}")).is_match(text)
    }

    /// gobwas/glob `glob_test.go` `TestGlob` (the cases without its fixtures), then classes,
    /// as `(pattern, text, separator, match)`.
    #[test]
    fn gobwas_semantics() {
        let cases: &[(&str, &str, Option<char>, bool)] = &[
            ("* ?at * eyes", "my cat has very bright eyes", None, true),
            ("", "", None, true),
            ("", "b", None, false),
            ("*ä", "åä", None, true),
            ("abc", "abc", None, true),
            ("a*c", "abc", None, true),
            ("a*c", "a12345c", None, true),
            ("a?c", "a1c", None, true),
            ("a.b", "a.b", Some('.'), true),
            ("a.*", "a.b", Some('.'), true),
            ("a.**", "a.b.c", Some('.'), true),
            ("a.?.c", "a.b.c", Some('.'), true),
            ("a.?.?", "a.b.c", Some('.'), true),
            ("?at", "cat", None, true),
            ("?at", "fat", None, true),
            ("*", "abc", None, true),
            (r"\*", "*", None, true),
            ("**", "a.b.c", Some('.'), true),
            ("?at", "at", None, false),
            ("?at", "fat", Some('f'), false),
            ("a.*", "a.b.c", Some('.'), false),
            ("a.?.c", "a.bb.c", Some('.'), false),
            ("*", "a.b.c", Some('.'), false),
            ("*test", "this is a test", None, true),
            ("this*", "this is a test", None, true),
            ("*is *", "this is a test", None, true),
            ("*is*a*", "this is a test", None, true),
            ("**test**", "this is a test", None, true),
            ("**is**a***test*", "this is a test", None, true),
            ("*is", "this is a test", None, false),
            ("*no*", "this is a test", None, false),
            ("[!a]*", "this is a test3", None, true),
            ("*abc", "abcabc", None, true),
            ("**abc", "abcabc", None, true),
            ("???", "abc", None, true),
            ("?*?", "abc", None, true),
            ("?*?", "ac", None, true),
            ("sta", "stagnation", None, false),
            ("sta*", "stagnation", None, true),
            ("sta?", "stagnation", None, false),
            ("sta?n", "stagnation", None, false),
            ("{abc,def}ghi", "defghi", None, true),
            ("{abc,abcd}a", "abcda", None, true),
            ("{a,ab}{bc,f}", "abc", None, true),
            ("{*,**}{a,b}", "ab", None, true),
            ("{*,**}{a,b}", "ac", None, false),
            ("/{rate,[a-z][a-z][a-z]}*", "/rate", None, true),
            ("/{rate,[0-9][0-9][0-9]}*", "/rate", None, true),
            ("/{rate,[a-z][a-z][a-z]}*", "/usd", None, true),
            ("{*.google.*,*.yandex.*}", "www.google.com", Some('.'), true),
            ("{*.google.*,*.yandex.*}", "www.yandex.com", Some('.'), true),
            ("{*.google.*,*.yandex.*}", "yandex.com", Some('.'), false),
            ("{*.google.*,*.yandex.*}", "google.com", Some('.'), false),
            ("{*.google.*,yandex.*}", "yandex.com", Some('.'), true),
            ("{google.*,*yandex.*}", "yandex.com", Some('.'), true),
            ("*//{,*.}example.com", "https://www.example.com", None, true),
            ("*//{,*.}example.com", "http://example.com", None, true),
            ("*//{,*.}example.com", "http://example.com.net", None, false),
            ("[a-c]at", "cat", None, true),
            ("[!a-c]at", "cat", None, false),
            ("[abc]at", "bat", None, true),
            ("[!abc]at", "fat", None, true),
        ];
        for (pattern, text, sep, want) in cases {
            assert_eq!(gob(pattern, *sep, text), *want, "{pattern:?} on {text:?} (separator {sep:?})");
        }
    }

    #[test]
    fn gobwas_parsing_edges() {
        // Outside a group `,` and `}` are text; an open group is closed at the end.
        assert!(gob("a,b}", None, "a,b}"));
        assert!(gob("x{a,b", None, "xb"));
        assert!(gob("a{}b", None, "ab"));
        assert!(gob("{a,{b,c}}d", None, "cd"));
        assert!(gob("[\\]]", None, "]"));
        for bad in ["[", "[]", "[!]", "[a-", "[z-a]", "[a-c0]"] {
            assert!(Glob::new(bad, None).is_err(), "{bad:?} compiles");
            assert!(!glob_match(bad, bad), "{bad:?} matches");
        }
    }

    /// Go's `path/filepath` `match_test.go` `matchTests` (`None`: `ErrBadPattern`).
    #[test]
    fn filepath_match_semantics() {
        let cases: &[(&str, &str, Option<bool>)] = &[
            ("abc", "abc", Some(true)),
            ("*", "abc", Some(true)),
            ("*c", "abc", Some(true)),
            ("a*", "a", Some(true)),
            ("a*", "ab/c", Some(false)),
            ("a*/b", "abc/b", Some(true)),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", Some(true)),
            ("a*b?c*x", "abxbbxdbxebxczzx", Some(true)),
            ("a*b?c*x", "abxbbxdbxebxczzy", Some(false)),
            ("ab[c]", "abc", Some(true)),
            ("ab[b-d]", "abc", Some(true)),
            ("ab[e-g]", "abc", Some(false)),
            ("ab[^c]", "abc", Some(false)),
            ("ab[^b-d]", "abc", Some(false)),
            ("ab[^e-g]", "abc", Some(true)),
            ("a\\*b", "a*b", Some(true)),
            ("a\\*b", "ab", Some(false)),
            ("a?b", "a☺b", Some(true)),
            ("a[^a]b", "a☺b", Some(true)),
            ("a???b", "a☺b", Some(false)),
            ("[a-ζ]*", "α", Some(true)),
            ("*[a-ζ]", "A", Some(false)),
            ("a?b", "a/b", Some(false)),
            ("a*b", "a/b", Some(false)),
            ("[\\]a]", "]", Some(true)),
            ("[\\-]", "-", Some(true)),
            ("[x\\-]", "z", Some(false)),
            ("[\\-x]", "a", Some(false)),
            ("[]a]", "]", None),
            ("[-]", "-", None),
            ("[x-]", "x", None),
            ("[a-b-c]", "a", None),
            ("[", "a", None),
            ("[^", "a", None),
            ("a[", "a", None),
            ("*x", "xxx", Some(true)),
        ];
        for (pattern, text, want) in cases {
            match (Glob::path(pattern), want) {
                (Ok(g), Some(w)) => assert_eq!(g.is_match(text), *w, "{pattern:?} on {text:?}"),
                (Err(_), None) => {}
                (got, _) => panic!("{pattern:?}: {got:?}, expected {want:?}"),
            }
        }
    }
}
