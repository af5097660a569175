//! The Python dict literal of an `.npy` header, and nothing more general: keys are quoted
//! strings, values are a quoted string, `True`/`False` or a tuple of non-negative
//! integers. See `npy.rs` for what numpy writes.

use super::npy::NpyError;

/// The three entries numpy requires.
#[derive(Debug, PartialEq, Eq)]
pub struct NpyDict {
    pub descr: String,
    pub fortran_order: bool,
    pub shape: Vec<u64>,
}

/// A shape with more dimensions than this is not an array numpy can make (NPY_MAXDIMS is
/// 64 since numpy 2.0, 32 before).
const MAX_DIMS: usize = 64;

enum Value {
    Str(String),
    Bool(bool),
    Tuple(Vec<u64>),
}

struct Cursor<'a> {
    text: &'a [u8],
    pos: usize,
    /// Offset of `text` in the file, for error positions.
    base: usize,
}

impl Cursor<'_> {
    fn err(&self, what: &'static str) -> NpyError {
        NpyError::Syntax {
            at: self.base + self.pos,
            what,
        }
    }

    fn skip_space(&mut self) {
        while self.text.get(self.pos).is_some_and(|&b| b == b' ') {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_space();
        self.text.get(self.pos).copied()
    }

    fn expect(&mut self, byte: u8, what: &'static str) -> Result<(), NpyError> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err(what))
        }
    }

    fn string(&mut self) -> Result<String, NpyError> {
        let quote = self
            .peek()
            .filter(|&q| q == b'\'' || q == b'"')
            .ok_or_else(|| self.err("expected a string"))?;
        let start = self.pos + 1;
        let len = self.text[start..]
            .iter()
            .position(|&b| b == quote)
            .ok_or_else(|| self.err("unterminated string"))?;
        let body = &self.text[start..start + len];
        if body.iter().any(|&b| b == b'\\' || b == b'\n' || !b.is_ascii()) {
            return Err(self.err("escapes or non-ASCII in a string"));
        }
        self.pos = start + len + 1;
        Ok(String::from_utf8_lossy(body).into_owned())
    }

    fn word(&mut self) -> &[u8] {
        self.skip_space();
        let start = self.pos;
        while self.text.get(self.pos).is_some_and(|b| b.is_ascii_alphanumeric()) {
            self.pos += 1;
        }
        &self.text[start..self.pos]
    }

    fn integer(&mut self) -> Result<u64, NpyError> {
        let word = self.word();
        let digits = word.strip_suffix(b"L").unwrap_or(word);
        let value = (!digits.is_empty() && digits.iter().all(u8::is_ascii_digit))
            .then(|| std::str::from_utf8(digits).ok()?.parse::<u64>().ok())
            .flatten();
        value.ok_or_else(|| self.err("expected a non-negative integer"))
    }

    fn value(&mut self) -> Result<Value, NpyError> {
        match self.peek() {
            Some(b'\'' | b'"') => self.string().map(Value::Str),
            Some(b'(') => {
                self.pos += 1;
                let mut dims = Vec::new();
                loop {
                    if self.peek() == Some(b')') {
                        self.pos += 1;
                        break;
                    }
                    if dims.len() == MAX_DIMS {
                        return Err(self.err("too many dimensions"));
                    }
                    dims.push(self.integer()?);
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b')') => {
                            // `(5)` is an int, not a tuple, in Python.
                            if dims.len() == 1 {
                                return Err(self.err("a one-element tuple needs a comma"));
                            }
                        }
                        _ => return Err(self.err("expected , or ) in the shape")),
                    }
                }
                Ok(Value::Tuple(dims))
            }
            _ => match self.word() {
                b"True" => Ok(Value::Bool(true)),
                b"False" => Ok(Value::Bool(false)),
                _ => Err(self.err("expected a string, a tuple, True or False")),
            },
        }
    }
}

/// Parses the header text (after the preamble; `base` is its offset in the member).
pub fn parse(text: &[u8], base: usize) -> Result<NpyDict, NpyError> {
    let mut c = Cursor { text, pos: 0, base };
    let (mut descr, mut fortran_order, mut shape) = (None, None, None);
    c.expect(b'{', "expected {")?;
    loop {
        if c.peek() == Some(b'}') {
            c.pos += 1;
            break;
        }
        let key = c.string()?;
        c.expect(b':', "expected :")?;
        if key == "descr" && c.peek() == Some(b'[') {
            return Err(NpyError::Unsupported("a structured dtype (list descr)".into()));
        }
        let at = c.pos;
        let value = c.value()?;
        let bad = |_| NpyError::Syntax {
            at: base + at,
            what: "wrong value type for the key",
        };
        let slot_taken = match (key.as_str(), value) {
            ("descr", Value::Str(s)) => descr.replace(s).is_some(),
            ("descr", Value::Tuple(_) | Value::Bool(_)) => return Err(bad(())),
            ("fortran_order", Value::Bool(b)) => fortran_order.replace(b).is_some(),
            ("shape", Value::Tuple(t)) => shape.replace(t).is_some(),
            ("fortran_order" | "shape", _) => return Err(bad(())),
            _ => true,
        };
        if slot_taken {
            return Err(NpyError::Key(key));
        }
        match c.peek() {
            Some(b',') => c.pos += 1,
            Some(b'}') => {}
            _ => return Err(c.err("expected , or }")),
        }
    }
    let rest = &text[c.pos..];
    if rest.last() != Some(&b'\n') || rest[..rest.len() - 1].iter().any(|&b| b != b' ') {
        return Err(c.err("header must end with spaces and a newline"));
    }
    Ok(NpyDict {
        descr: descr.ok_or(NpyError::MissingKey("descr"))?,
        fortran_order: fortran_order.ok_or(NpyError::MissingKey("fortran_order"))?,
        shape: shape.ok_or(NpyError::MissingKey("shape"))?,
    })
}
