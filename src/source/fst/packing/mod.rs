// placeholder until the fst-packing branch lands
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WordOrder {
    Big,
    Little,
}
