//! Lambda entry point: the company's Chorus Pro account settings.

shared::http_main!(company_settings);
