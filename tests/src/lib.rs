//! Local-stack tools (the local API, the Chorus Pro sandbox emulator) and the helpers the
//! integration tests share.

pub mod jwt;
pub mod local_api;
pub mod qualify;
pub mod sandbox;
pub mod testkit;
