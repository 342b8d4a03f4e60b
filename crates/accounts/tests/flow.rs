//! The library end to end, as the HTTP layer will use it: enrol TOTP, store the secret
//! encrypted, sign in, refuse a replay, fall back to a recovery code, rotate the key.

use wikiguard_accounts::audit::{Event, EventKind, IpPseudonymiser};
use wikiguard_accounts::keys::HmacKey;
use wikiguard_accounts::policy::FactorKind;
use wikiguard_accounts::random::TestRandom;
use wikiguard_accounts::secretbox::{Keyring, NamedKey};
use wikiguard_accounts::totp::{self, Rejection, TotpParams, TotpState, VerifyConfig, VerifyOutcome};
use wikiguard_accounts::{oathauth, recovery};

#[test]
fn enrol_store_sign_in_recover_rotate() {
    let mut rng = TestRandom::new(42);
    let cfg = VerifyConfig::default();
    let ring = Keyring::new("k1", vec![NamedKey::parse("k1", &"11".repeat(32)).unwrap()]).unwrap();
    let now = 1_700_000_000;

    let enrolment = totp::begin_enrollment(&mut rng, "Example Wiki", "Alice", TotpParams::default(), now).unwrap();
    let code = totp::code_at(
        &wikiguard_accounts::base32::decode(&enrolment.secret).unwrap(),
        &TotpParams::default(),
        now + 5,
    );
    let state = totp::confirm_enrollment(&enrolment.pending, &code, now + 5, &cfg).unwrap();
    let stored = ring.seal(&serde_json::to_vec(&state).unwrap(), &mut rng).unwrap();

    // Sign in 30 s later with the next code.
    let state: TotpState = serde_json::from_slice(&ring.open(&stored).unwrap()).unwrap();
    let code = totp::code_at(&state.secret, &state.params, now + 35);
    let (out, state) = totp::verify(&state, &code, now + 35, &cfg);
    assert!(matches!(out, VerifyOutcome::Accepted { .. }));
    assert_eq!(
        totp::verify(&state, &code, now + 40, &cfg).0,
        VerifyOutcome::Rejected(Rejection::Replayed)
    );

    // Lost phone: a recovery code, once.
    let rkey = HmacKey::new([2; 32]);
    let codes = recovery::generate(&mut rng, &rkey, now);
    let (left, used) = recovery::use_code(&codes.stored, &rkey, &codes.plain[0], now + 50).unwrap();
    assert_eq!(used.remaining, 9);
    assert!(recovery::use_code(&left, &rkey, &codes.plain[0], now + 51).is_err());
    let p = IpPseudonymiser::new(HmacKey::new([3; 32]));
    let ev = Event::new(
        now + 50,
        "Alice",
        "192.0.2.1".parse().ok(),
        &p,
        EventKind::RecoveryCodeUsed { remaining: 9 },
    );
    assert!(!serde_json::to_string(&ev).unwrap().contains("192.0.2.1"));

    // Rotate: add k2, make it current, rewrap.
    let ring2 = Keyring::new(
        "k2",
        vec![
            NamedKey::parse("k1", &"11".repeat(32)).unwrap(),
            NamedKey::parse("k2", &"22".repeat(32)).unwrap(),
        ],
    )
    .unwrap();
    let rewrapped = ring2.rewrap(&stored, &mut rng).unwrap().unwrap();
    assert_eq!(Keyring::key_id_of(&rewrapped).unwrap(), "k2");
    assert_eq!(ring2.open(&rewrapped).unwrap(), ring.open(&stored).unwrap());
    let _ = FactorKind::Totp;
}

#[test]
fn imported_oathauth_key_keeps_working() {
    let json = r#"[{"oad_user": 5, "oad_type": "totp", "oad_name": "",
        "oad_data": "{\"secret\":\"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\",\"scratch_tokens\":[\"JBSWY3DPEHPK3PXP\"]}"}]"#;
    let report = oathauth::parse_export(json, &oathauth::ImportOptions::default()).unwrap();
    let t = &report.totp[0];
    let state = TotpState::new(t.secret.clone(), TotpParams::default());
    // RFC 6238's SHA-1 seed: the code at T = 59 s is 287082 (6 digits).
    assert_eq!(
        totp::verify(&state, "287082", 59, &VerifyConfig::default()).0,
        VerifyOutcome::Accepted { step: 1 }
    );
    let key = HmacKey::new([1; 32]);
    let codes = recovery::StoredCodes::from_plain(&key, &t.scratch_tokens, 0);
    assert!(recovery::use_code(&codes, &key, "jbsw y3dp ehpk 3pxp", 1).is_ok());
}
