//! The pieces of AMReX's text syntax the headers share: numbers as C++ and Fortran wrote
//! them, IntVects `(1,2,3)`, Boxes `((lo) (hi) (type))`, and a cursor that reads them while
//! counting lines, so every error says where it happened.

use std::cell::Cell;
use std::fmt;

/// An index box: cell indices `lo..=hi` per dimension and the IndexType (0 cell, 1 node).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IBox {
    pub lo: Vec<i64>,
    pub hi: Vec<i64>,
    pub typ: Vec<u8>,
}

impl IBox {
    pub fn dim(&self) -> usize {
        self.lo.len()
    }

    /// Cells (or points) along each dimension.
    pub fn size(&self) -> Vec<u64> {
        self.lo
            .iter()
            .zip(&self.hi)
            .map(|(lo, hi)| u64::try_from(hi - lo + 1).unwrap_or(0))
            .collect()
    }

    /// Cells in the box, saturating: indices are 32-bit, so a box can claim up to 2^96.
    pub fn num_points(&self) -> u64 {
        self.size().iter().fold(1u64, |n, s| n.saturating_mul(*s))
    }

    /// The box grown by `ngrow` cells on every side (a FAB's extent with ghost cells).
    pub fn grown(&self, ngrow: &[i64]) -> IBox {
        IBox {
            lo: self.lo.iter().zip(ngrow).map(|(l, g)| l - g).collect(),
            hi: self.hi.iter().zip(ngrow).map(|(h, g)| h + g).collect(),
            typ: self.typ.clone(),
        }
    }

    pub fn is_cell_centred(&self) -> bool {
        self.typ.iter().all(|t| *t == 0)
    }
}

impl fmt::Display for IBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |v: &[i64]| v.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        let typ: Vec<i64> = self.typ.iter().map(|t| i64::from(*t)).collect();
        write!(f, "(({}) ({}) ({}))", join(&self.lo), join(&self.hi), join(&typ))
    }
}

/// Parses a real as AMReX writers print them: `%.17g`, `%.17e`, Fortran `1.0D+00` or
/// `1.00000000000000000E+000` with leading blanks, and `inf`/`nan`/`-nan`.
pub fn real(token: &str) -> Option<f64> {
    let token = token.trim();
    if token.contains(['D', 'd']) {
        token.replace(['D', 'd'], "e").parse().ok()
    } else {
        token.parse().ok()
    }
}

/// A reader over one header's text that knows its line number.
pub struct Cursor<'a> {
    text: &'a str,
    pos: usize,
    what: &'static str,
    /// A position and the newlines before it, so that asking for the line number as the
    /// cursor moves on (once per box of a Cell_H) counts each newline once, not from the start.
    counted: Cell<(usize, usize)>,
}

impl<'a> Cursor<'a> {
    pub fn new(text: &'a str, what: &'static str) -> Self {
        Cursor {
            text,
            pos: 0,
            what,
            counted: Cell::new((0, 0)),
        }
    }

    pub fn line_number(&self) -> usize {
        let newlines = |range: &str| range.bytes().filter(|b| *b == b'\n').count();
        let (at, before) = self.counted.get();
        let lines = if at <= self.pos {
            before + newlines(&self.text[at..self.pos])
        } else {
            newlines(&self.text[..self.pos])
        };
        self.counted.set((self.pos, lines));
        lines + 1
    }

    /// An error at the current position.
    pub fn error(&self, message: impl fmt::Display) -> String {
        format!("{} line {}: {message}", self.what, self.line_number())
    }

    pub fn at_end(&mut self) -> bool {
        self.skip_ws();
        self.pos >= self.text.len()
    }

    /// The rest of the current line (without its newline), moving past it.
    pub fn line(&mut self) -> Result<&'a str, String> {
        if self.pos >= self.text.len() {
            return Err(self.error("unexpected end of file"));
        }
        let rest = &self.text[self.pos..];
        let end = rest.find('\n').unwrap_or(rest.len());
        self.pos += (end + 1).min(rest.len());
        Ok(rest[..end].trim_end_matches('\r'))
    }

    /// The next line parsed as one value.
    pub fn line_as<T: std::str::FromStr>(&mut self, name: &str) -> Result<T, String> {
        self.parse_line(name, |line| line.trim().parse().ok())
    }

    /// The next line through `parse`; an error names the line and what was `expected`.
    pub fn parse_line<T>(
        &mut self,
        expected: &str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<T, String> {
        let at = self.line_number();
        let line = self.line()?;
        parse(line).ok_or_else(|| {
            format!(
                "{} line {at}: expected {expected}, found '{}'",
                self.what,
                line.trim()
            )
        })
    }

    pub fn skip_ws(&mut self) {
        let rest = &self.text[self.pos..];
        self.pos += rest.len() - rest.trim_start().len();
    }

    /// The next whitespace-separated token.
    pub fn token(&mut self) -> Result<&'a str, String> {
        self.skip_ws();
        let rest = &self.text[self.pos..];
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        if end == 0 {
            return Err(self.error("unexpected end of file"));
        }
        self.pos += end;
        Ok(&rest[..end])
    }

    /// The next token without consuming it.
    pub fn peek_token(&mut self) -> Option<&'a str> {
        let save = self.pos;
        let token = self.token().ok();
        self.pos = save;
        token
    }

    pub fn int(&mut self, name: &str) -> Result<i64, String> {
        self.skip_ws();
        let rest = &self.text[self.pos..];
        let end = rest
            .char_indices()
            .find(|(i, c)| !(c.is_ascii_digit() || (*i == 0 && (*c == '-' || *c == '+'))))
            .map_or(rest.len(), |(i, _)| i);
        let value = rest[..end]
            .parse()
            .map_err(|_| self.error(format!("expected {name}, found '{}'", excerpt(rest))))?;
        self.pos += end;
        Ok(value)
    }

    pub fn real(&mut self, name: &str) -> Result<f64, String> {
        let token = self.token()?;
        real(token).ok_or_else(|| self.error(format!("expected {name}, found '{token}'")))
    }

    /// Consumes `c` (after optional whitespace) or fails.
    pub fn expect(&mut self, c: char) -> Result<(), String> {
        self.skip_ws();
        if self.text[self.pos..].starts_with(c) {
            self.pos += c.len_utf8();
            Ok(())
        } else {
            Err(self.error(format!(
                "expected '{c}', found '{}'",
                excerpt(&self.text[self.pos..])
            )))
        }
    }

    /// Consumes `c` if it comes next (after optional whitespace).
    pub fn eat(&mut self, c: char) -> bool {
        self.skip_ws();
        let found = self.text[self.pos..].starts_with(c);
        if found {
            self.pos += c.len_utf8();
        }
        found
    }

    /// `(i,j,k)`: any number of comma-separated integers, each within AMReX's `int`.
    pub fn int_vect(&mut self) -> Result<Vec<i64>, String> {
        self.expect('(')?;
        let mut out = vec![self.index()?];
        while self.eat(',') {
            out.push(self.index()?);
        }
        self.expect(')')?;
        Ok(out)
    }

    fn index(&mut self) -> Result<i64, String> {
        let value = self.int("an IntVect component")?;
        if i32::try_from(value).is_err() {
            return Err(self.error(format!("index {value} out of range")));
        }
        Ok(value)
    }

    /// `((lo) (hi) (type))`; the type is optional and defaults to cell-centred.
    pub fn ibox(&mut self) -> Result<IBox, String> {
        self.expect('(')?;
        let lo = self.int_vect()?;
        let hi = self.int_vect()?;
        let typ = if self.eat(')') {
            vec![0; lo.len()]
        } else {
            let typ = self.int_vect()?;
            self.expect(')')?;
            typ
        };
        if hi.len() != lo.len() || typ.len() != lo.len() || typ.iter().any(|t| !(0..=1).contains(t)) {
            return Err(self.error("malformed box"));
        }
        if lo.iter().zip(&hi).any(|(l, h)| h < l) {
            return Err(self.error("box with hi below lo"));
        }
        Ok(IBox {
            lo,
            hi,
            typ: typ.into_iter().map(|t| t as u8).collect(),
        })
    }

    /// The text from here on.
    pub fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }
}

fn excerpt(text: &str) -> String {
    text.chars().take(24).take_while(|c| *c != '\n').collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reals_in_every_writer_format() {
        assert_eq!(real("0.25"), Some(0.25));
        assert_eq!(real("  1.00000000000000000E+000"), Some(1.0));
        assert_eq!(real("1.5D-01"), Some(0.15));
        assert_eq!(real("3.78930664062500000e+00"), Some(3.789306640625));
        assert!(real("inf").is_some_and(f64::is_infinite));
        assert!(real("-inf").is_some_and(|v| v == f64::NEG_INFINITY));
        assert!(real("nan").is_some_and(f64::is_nan));
        assert!(real("-nan").is_some_and(f64::is_nan));
        assert_eq!(real("Level_0/Cell"), None);
    }

    #[test]
    fn boxes_and_intvects() {
        let mut c = Cursor::new("((-16,0,4) (31,15,15) (0,0,1)) ((0) (63))\n(2,1)", "test");
        let b = c.ibox().unwrap();
        assert_eq!(b.lo, vec![-16, 0, 4]);
        assert_eq!(b.size(), vec![48, 16, 12]);
        assert_eq!(b.typ, vec![0, 0, 1]);
        assert!(!b.is_cell_centred());
        let b = c.ibox().unwrap();
        assert_eq!((b.lo, b.hi, b.typ), (vec![0], vec![63], vec![0]));
        assert_eq!(c.int_vect().unwrap(), vec![2, 1]);
        assert!(c.at_end());
        let err = Cursor::new("((0,0) (3,x))", "Cell_H").ibox().unwrap_err();
        assert!(err.starts_with("Cell_H line 1"), "{err}");
        assert!(Cursor::new("((5) (3))", "t").ibox().is_err());
    }
}
