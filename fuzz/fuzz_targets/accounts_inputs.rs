//! The accounts door's parsers on arbitrary bytes: otpauth URIs, base32, TOTP codes,
//! recovery codes, sealed secrets, device cookies, key strings, breach-list lines and
//! OATHAuth export rows. Any panic is a bug: all of these come from users or files.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wikiguard_accounts::keys::HmacKey;
use wikiguard_accounts::secretbox::{Keyring, NamedKey};
use wikiguard_accounts::totp::{self, OtpAuthUri, TotpParams, TotpState, VerifyConfig};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = OtpAuthUri::parse(&text);
    let _ = wikiguard_accounts::base32::decode(&text);
    let _ = wikiguard_accounts::keys::parse_key32(&text);
    let _ = wikiguard_accounts::recovery::normalise(&text);
    let _ = wikiguard_accounts::breach::parse_line(data, None);
    let _ = wikiguard_accounts::breach::parse_hash(&text);
    let _ = wikiguard_accounts::oathauth::parse_export(&text, &Default::default());
    let state = TotpState::new(b"12345678901234567890".to_vec(), TotpParams::default());
    let _ = totp::verify(&state, &text, 1_700_000_000, &VerifyConfig::default());
    let key = HmacKey::new([7; 32]);
    let _ = wikiguard_accounts::device::DeviceNotifier::new(key.clone()).verify(&text);
    let codes = wikiguard_accounts::recovery::StoredCodes::from_plain(&key, &["JBSWY3DPEHPK3PXP".to_string()], 0);
    let _ = wikiguard_accounts::recovery::use_code(&codes, &key, &text, 1);
    if let Ok(k) = NamedKey::new("k1", [9; 32]) {
        if let Ok(ring) = Keyring::new("k1", vec![k]) {
            let _ = ring.open(data);
            let _ = Keyring::key_id_of(data);
        }
    }
});
