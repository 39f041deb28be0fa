//! Lambda entry point: transmit a situation to Chorus Pro.

shared::http_main!(transmit_invoice);
