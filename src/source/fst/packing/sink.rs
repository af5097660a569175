//! Decoded values on their way out: little-endian bytes of the record's [`Element`]. Packings
//! produce 32-bit values; a record whose element is 64 bits wide (`dasiz` 64) gets them widened.

use super::Element;

pub(crate) struct Sink {
    bytes: Vec<u8>,
    wide: bool,
}

impl Sink {
    /// Room for `n` elements. The caller has checked that the payload holds them.
    pub(crate) fn new(element: Element, n: usize) -> Self {
        Sink {
            bytes: Vec::with_capacity(n.saturating_mul(element.size())),
            wide: matches!(
                element,
                Element::F64 | Element::C128 | Element::U64 | Element::I64
            ),
        }
    }

    #[inline]
    pub(crate) fn f32(&mut self, value: f32) {
        if self.wide {
            self.bytes.extend_from_slice(&f64::from(value).to_le_bytes());
        } else {
            self.bytes.extend_from_slice(&value.to_le_bytes());
        }
    }

    #[inline]
    pub(crate) fn f64(&mut self, value: f64) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }

    #[inline]
    pub(crate) fn u32(&mut self, value: u32) {
        if self.wide {
            self.bytes.extend_from_slice(&u64::from(value).to_le_bytes());
        } else {
            self.bytes.extend_from_slice(&value.to_le_bytes());
        }
    }

    #[inline]
    pub(crate) fn i32(&mut self, value: i32) {
        if self.wide {
            self.bytes.extend_from_slice(&i64::from(value).to_le_bytes());
        } else {
            self.bytes.extend_from_slice(&value.to_le_bytes());
        }
    }

    /// The bytes of `values` passed one by one through `put`.
    pub(crate) fn collect(element: Element, values: Vec<u32>, put: impl Fn(&mut Sink, u32)) -> Vec<u8> {
        let mut sink = Sink::new(element, values.len());
        for value in values {
            put(&mut sink, value);
        }
        sink.finish()
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        self.bytes
    }
}
