//! The buyer check: one code path for a market's buyer (`identifiers`), its *maître
//! d'œuvre*, the buyer look-up route and a recycled invoice's new routing
//! (`transmit-invoice`), so that Chorus Pro's requirements are read and judged the same
//! way wherever an invoice's recipient is chosen (docs/chorus-pro.md#buyer-requirements).

pub mod check;
pub mod structure;

pub use check::{check, check_project_manager};
