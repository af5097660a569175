pub mod packing;
