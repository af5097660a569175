//! The +64 datyp flag (fst.md §2.9): the writer replaced missing points by a "plug" larger
//! than every real value, so after decoding every element equal to the field's maximum is
//! missing. librmn then writes its own flag values (−1e38 for floats …) when asked to;
//! fstd2nc applies the rule itself. [`mark_missing`] does the replacement with a value of the
//! caller's choosing.

use super::Element;

/// For datyp+64 records: replaces every element equal to the record's maximum (the writer's
/// "plug") by `replacement` (converted to the element type: saturating for integers) and
/// returns how many were replaced. NaNs never count as the maximum. Characters and complex
/// numbers have no maximum: nothing is replaced. `values` are little-endian bytes of
/// `element`; a trailing partial element is ignored.
pub fn mark_missing(element: Element, values: &mut [u8], replacement: f64) -> usize {
    match element {
        Element::F32 => replace_max::<f32, 4>(values, replacement as f32),
        Element::F64 => replace_max::<f64, 8>(values, replacement),
        Element::U32 => replace_max::<u32, 4>(values, replacement as u32),
        Element::U64 => replace_max::<u64, 8>(values, replacement as u64),
        Element::I32 => replace_max::<i32, 4>(values, replacement as i32),
        Element::I64 => replace_max::<i64, 8>(values, replacement as i64),
        Element::U8 | Element::C64 | Element::C128 => 0,
    }
}

/// A number stored as `N` little-endian bytes.
trait LeScalar<const N: usize>: Copy + PartialOrd {
    fn from_le(bytes: [u8; N]) -> Self;
    fn to_le(self) -> [u8; N];
}

macro_rules! le_scalar {
    ($($t:ty => $n:literal),*) => {$(
        impl LeScalar<$n> for $t {
            fn from_le(bytes: [u8; $n]) -> Self {
                <$t>::from_le_bytes(bytes)
            }
            fn to_le(self) -> [u8; $n] {
                self.to_le_bytes()
            }
        }
    )*};
}
le_scalar!(f32 => 4, f64 => 8, u32 => 4, u64 => 8, i32 => 4, i64 => 8);

fn replace_max<T: LeScalar<N>, const N: usize>(values: &mut [u8], replacement: T) -> usize {
    let read = |chunk: &[u8]| -> Option<T> { chunk.try_into().ok().map(T::from_le) };
    // Only NaN is not comparable with itself.
    let max = values
        .chunks_exact(N)
        .filter_map(read)
        .filter(|v| v.partial_cmp(v).is_some())
        .reduce(|a, b| if b > a { b } else { a });
    let Some(max) = max else {
        return 0;
    };
    let mut count = 0;
    for chunk in values.chunks_exact_mut(N) {
        if read(chunk) == Some(max) {
            chunk.copy_from_slice(&replacement.to_le());
            count += 1;
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes<T: LeScalar<N>, const N: usize>(values: &[T]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le()).collect()
    }

    #[test]
    fn every_maximum_becomes_the_replacement() {
        let mut v = bytes(&[1.0f32, 7.5, f32::NAN, 7.5, -3.0]);
        assert_eq!(mark_missing(Element::F32, &mut v, -1e38), 2);
        let got: Vec<f32> = v
            .chunks_exact(4)
            .map(|c| f32::from_le(c.try_into().unwrap()))
            .collect();
        assert_eq!(got[..2], [1.0, -1e38]);
        assert!(got[2].is_nan());
        assert_eq!(got[3..], [-1e38, -3.0]);

        let mut v = bytes(&[3.0f64, -1.0, 3.0]);
        assert_eq!(mark_missing(Element::F64, &mut v, f64::NAN), 2);
        assert!(f64::from_le(v[..8].try_into().unwrap()).is_nan());
        assert_eq!(f64::from_le(v[8..16].try_into().unwrap()), -1.0);
    }

    #[test]
    fn integers_saturate_and_other_types_are_left_alone() {
        let mut v = bytes(&[5i32, -9, 5, 4]);
        assert_eq!(mark_missing(Element::I32, &mut v, -1e38), 2);
        assert_eq!(v, bytes(&[i32::MIN, -9, i32::MIN, 4]));
        let mut v = bytes(&[u64::MAX, 0]);
        assert_eq!(mark_missing(Element::U64, &mut v, 0.0), 1);
        assert_eq!(v, bytes(&[0u64, 0]));
        let mut s = b"ABZ".to_vec();
        assert_eq!(mark_missing(Element::U8, &mut s, 0.0), 0);
        assert_eq!(s, b"ABZ");
        let mut all_nan = bytes(&[f32::NAN]);
        assert_eq!(mark_missing(Element::F32, &mut all_nan, 0.0), 0);
        assert_eq!(mark_missing(Element::F32, &mut [], 0.0), 0);
    }
}
