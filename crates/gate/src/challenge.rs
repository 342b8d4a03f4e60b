//! The proof-of-work challenge and the pass cookie (the exact algorithm, for client
//! authors, is in `docs/gate-challenge.md`).
//!
//! Stateless: a challenge token carries its issue time, expiry, difficulty, slow-path wait, a
//! random part and a binding to the client (keyed hash of its /24 or /64 and user agent),
//! all signed with HMAC-SHA-256 under the gate secret. Verification needs no storage and
//! works on any gate node sharing the secret. The answer is a decimal `nonce` such that
//! SHA-256(token ‖ nonce) starts with `difficulty` zero bits.
//!
//! The pass cookie `1.EXPIRY.MAC` (MAC = base64url HMAC over client prefix, user-agent hash
//! and expiry) makes the client known-good until EXPIRY for that network and user agent only.

use std::net::IpAddr;

use crate::classify::parse_query;
use crate::crypto::{b64url, b64url_decode, hex, push_hex, sha256, Keys};
use crate::{client_prefix, ChallengeError};

/// Path the answer is sent to (POST form/JSON, or GET for the slow no-JavaScript path).
pub const VERIFY_PATH: &str = "/.wikiguard/challenge/verify";

/// Largest challenge answer body accepted.
pub const MAX_ANSWER_BYTES: usize = 8192;

const TOKEN_DOMAIN: &[u8] = b"wikiguard-challenge-v1";
const BIND_DOMAIN: &[u8] = b"wikiguard-bind-v1";
const PASS_DOMAIN: &[u8] = b"wikiguard-pass-v1";

/// The user agent as a short hash (what pass cookies and challenges are bound to).
pub(crate) fn ua_hash(user_agent: &str) -> String {
    let mut out = String::with_capacity(32);
    push_ua_hash(&mut out, user_agent);
    out
}

/// [`ua_hash`] appended to `out`.
pub(crate) fn push_ua_hash(out: &mut String, user_agent: &str) {
    push_hex(out, &sha256(user_agent.as_bytes())[..16]);
}

/// Number of leading zero bits of a digest.
pub fn leading_zero_bits(digest: &[u8]) -> u32 {
    let mut n = 0;
    for b in digest {
        if *b == 0 {
            n += 8;
        } else {
            return n + b.leading_zeros();
        }
    }
    n
}

/// True when SHA-256(challenge ‖ nonce) has at least `difficulty` leading zero bits.
pub fn work_is_sufficient(challenge: &str, nonce: &str, difficulty: u8) -> bool {
    let mut input = Vec::with_capacity(challenge.len() + nonce.len());
    input.extend_from_slice(challenge.as_bytes());
    input.extend_from_slice(nonce.as_bytes());
    leading_zero_bits(&sha256(&input)) >= u32::from(difficulty)
}

/// A parsed, signature-checked challenge token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    pub(crate) issued_s: u64,
    pub(crate) expires_s: u64,
    pub(crate) difficulty: u8,
    pub(crate) slow_s: u64,
}

fn bind(keys: &Keys, ip: IpAddr, user_agent: &str) -> String {
    let prefix = client_prefix(ip);
    let mac = keys.sign(BIND_DOMAIN, &[prefix.as_bytes(), ua_hash(user_agent).as_bytes()]);
    hex(&mac[..8])
}

fn bind_verifies(keys: &Keys, ip: IpAddr, user_agent: &str, given: &str) -> bool {
    let prefix = client_prefix(ip);
    let Some(given) = unhex(given) else { return false };
    // The MAC is truncated to 8 bytes; compare against the truncation under every key.
    let ua = ua_hash(user_agent);
    let parts: [&[u8]; 2] = [prefix.as_bytes(), ua.as_bytes()];
    keys.verify_truncated(BIND_DOMAIN, &parts, &given)
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Issues a token: `1.ISSUED.EXPIRES.DIFFICULTY.SLOW.RANDOM.BIND.MAC`.
#[allow(clippy::too_many_arguments)] // each is one field of the token; a struct would only rename them
pub(crate) fn issue(
    keys: &Keys,
    ip: IpAddr,
    user_agent: &str,
    difficulty: u8,
    slow_s: u64,
    ttl_s: u64,
    random: &str,
    now_ms: u64,
) -> String {
    let issued = now_ms / 1000;
    // The slow path must still be usable when its wait is over.
    let expires = issued + ttl_s.max(slow_s + 120);
    let body = format!(
        "1.{issued}.{expires}.{difficulty}.{slow_s}.{random}.{}",
        bind(keys, ip, user_agent)
    );
    let mac = keys.sign(TOKEN_DOMAIN, &[body.as_bytes()]);
    format!("{body}.{}", b64url(&mac))
}

/// Checks the token's signature, expiry and binding; returns its fields.
pub(crate) fn check_token(
    keys: &Keys,
    token: &str,
    ip: IpAddr,
    user_agent: &str,
    now_ms: u64,
) -> Result<Token, ChallengeError> {
    let malformed = || ChallengeError::Malformed("the challenge token is not in the issued form".into());
    let (body, mac) = token.rsplit_once('.').ok_or_else(malformed)?;
    let parts: Vec<&str> = body.split('.').collect();
    let [version, issued, expires, difficulty, slow, _random, bound] = parts[..] else {
        return Err(malformed());
    };
    if version != "1" {
        return Err(malformed());
    }
    let mac = b64url_decode(mac).ok_or_else(malformed)?;
    if !keys.verify(TOKEN_DOMAIN, &[body.as_bytes()], &mac) {
        return Err(ChallengeError::BadSignature);
    }
    let t = Token {
        issued_s: issued.parse().map_err(|_| malformed())?,
        expires_s: expires.parse().map_err(|_| malformed())?,
        difficulty: difficulty.parse().map_err(|_| malformed())?,
        slow_s: slow.parse().map_err(|_| malformed())?,
    };
    if now_ms / 1000 >= t.expires_s {
        return Err(ChallengeError::Expired);
    }
    if !bind_verifies(keys, ip, user_agent, bound) {
        return Err(ChallengeError::WrongClient);
    }
    Ok(t)
}

/// The fields of an answer.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Answer {
    pub(crate) challenge: String,
    pub(crate) nonce: Option<String>,
    pub(crate) return_to: Option<String>,
    pub(crate) slow: bool,
}

/// Reads `challenge=…&nonce=…&return=…[&slow=1]` or the same keys as a JSON object.
pub(crate) fn parse_answer(body: &[u8]) -> Result<Answer, ChallengeError> {
    if body.len() > MAX_ANSWER_BYTES {
        return Err(ChallengeError::Malformed(format!(
            "the answer is larger than {MAX_ANSWER_BYTES} bytes"
        )));
    }
    let trimmed = body.trim_ascii_start();
    let mut a = Answer::default();
    let mut challenge = None;
    if trimmed.first() == Some(&b'{') {
        let v: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(trimmed).map_err(|e| ChallengeError::Malformed(format!("invalid JSON: {e}")))?;
        let text = |k: &str| match v.get(k) {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(serde_json::Value::Number(n)) => Some(n.to_string()),
            Some(serde_json::Value::Bool(b)) => Some(if *b { "1".into() } else { "0".into() }),
            _ => None,
        };
        challenge = text("challenge");
        a.nonce = text("nonce");
        a.return_to = text("return");
        a.slow = text("slow").is_some_and(|s| s == "1" || s == "true");
    } else {
        let text = String::from_utf8_lossy(body);
        for (k, v) in parse_query(text.trim()) {
            match &*k {
                "challenge" => challenge = Some(v.into_owned()),
                "nonce" => a.nonce = Some(v.into_owned()),
                "return" => a.return_to = Some(v.into_owned()),
                "slow" => a.slow = v == "1" || v == "true",
                _ => {}
            }
        }
    }
    a.challenge = challenge
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ChallengeError::Malformed("no challenge".into()))?;
    if !a.slow {
        let nonce = a
            .nonce
            .as_deref()
            .ok_or_else(|| ChallengeError::Malformed("no nonce".into()))?;
        if nonce.is_empty() || nonce.len() > 20 || !nonce.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ChallengeError::Malformed(
                "the nonce must be a decimal number of at most 20 digits".into(),
            ));
        }
    }
    Ok(a)
}

/// Only a local path (`/…`, not `//host` or `/\host`) is a place to send the client back to.
pub fn safe_return(path: Option<&str>) -> String {
    match path {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && !p.starts_with("/\\")
                && p.len() <= 2048
                && !p.starts_with("/.wikiguard/")
                && !p.bytes().any(|b| b.is_ascii_control()) =>
        {
            p.to_string()
        }
        _ => "/".into(),
    }
}

/// A pass cookie value `1.EXPIRES.MAC`.
pub(crate) fn pass_value(keys: &Keys, ip: IpAddr, user_agent: &str, expires_s: u64) -> String {
    let mac = pass_mac(keys, ip, user_agent, expires_s);
    format!("1.{expires_s}.{}", b64url(&mac))
}

fn pass_mac(keys: &Keys, ip: IpAddr, user_agent: &str, expires_s: u64) -> [u8; 32] {
    let prefix = client_prefix(ip);
    let exp = expires_s.to_string();
    keys.sign(
        PASS_DOMAIN,
        &[prefix.as_bytes(), ua_hash(user_agent).as_bytes(), exp.as_bytes()],
    )
}

/// What the pass cookie of a request says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PassStatus {
    /// No pass cookie.
    Absent,
    /// A valid pass for this client.
    Valid,
    /// Malformed or forged (or signed with a key no longer accepted).
    Forged,
    /// Past its expiry.
    Expired,
    /// Signed, but for another network or user agent (or expiry tampered with).
    Rebound,
}

/// Checks a pass cookie value. A correct MAC for other client facts cannot be told apart from
/// a forged one without more data, so the rebound case is detected by the signature failing
/// while the format is right and the expiry plausible; both are refused alike.
pub(crate) fn check_pass(
    keys: &Keys,
    value: &str,
    ip: IpAddr,
    user_agent: &str,
    max_ttl_s: u64,
    now_ms: u64,
) -> PassStatus {
    let mut it = value.split('.');
    let (Some("1"), Some(exp), Some(mac), None) = (it.next(), it.next(), it.next(), it.next()) else {
        return PassStatus::Forged;
    };
    let Ok(exp) = exp.parse::<u64>() else {
        return PassStatus::Forged;
    };
    let Some(mac) = b64url_decode(mac) else {
        return PassStatus::Forged;
    };
    if mac.len() != 32 {
        return PassStatus::Forged;
    }
    let now_s = now_ms / 1000;
    let prefix = client_prefix(ip);
    let exp_text = exp.to_string();
    let ua = ua_hash(user_agent);
    let parts: [&[u8]; 3] = [prefix.as_bytes(), ua.as_bytes(), exp_text.as_bytes()];
    if !keys.verify(PASS_DOMAIN, &parts, &mac) {
        return if exp > now_s && exp <= now_s + max_ttl_s + 60 {
            PassStatus::Rebound
        } else {
            PassStatus::Forged
        };
    }
    if exp <= now_s {
        return PassStatus::Expired;
    }
    if exp > now_s + max_ttl_s + 60 {
        // Signed by us, but longer-lived than the configured TTL allows (TTL lowered since).
        return PassStatus::Expired;
    }
    PassStatus::Valid
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// JSON for embedding in `<script type="application/json">`: no `<`, `>`, `&` survive.
pub(crate) fn json_for_script(value: &serde_json::Value) -> String {
    let text = value.to_string();
    text.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

fn form_encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// The challenge page. `token` is the issued token, `return_to` the safe return path.
pub(crate) fn render_page(
    token: &str,
    difficulty: u8,
    slow_s: u64,
    expires_s: u64,
    return_to: &str,
    reference: &str,
) -> String {
    let params = serde_json::json!({
        "challenge": token,
        "difficulty": difficulty,
        "expires": expires_s,
        "verify": VERIFY_PATH,
        "return": return_to,
        "slow_seconds": slow_s,
        "reference": reference,
    });
    let slow_url = format!(
        "{VERIFY_PATH}?challenge={}&slow=1&return={}",
        form_encode(token),
        form_encode(return_to)
    );
    let slow_url_html = escape_html(&slow_url);
    let reference_html = escape_html(reference);
    let json = json_for_script(&params);
    let wait = slow_s + 1; // one second of margin for clock granularity
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<title>Checking your browser</title>
<noscript><meta http-equiv="refresh" content="{wait};url={slow_url_html}"></noscript>
<style>body{{font-family:sans-serif;max-width:40em;margin:3em auto;padding:0 1em;line-height:1.5;color:#202122}}#wikiguard-status{{font-weight:bold}}</style>
<script type="application/json" id="wikiguard-challenge">{json}</script>
</head>
<body>
<main>
<h1>Checking your browser</h1>
<p>This wiki is receiving a lot of automated traffic, so it asks some visitors' browsers to do a short calculation before showing the page. This proves that you are not a bulk crawler. It usually takes a few seconds and happens once a day; nothing is installed and no personal data is collected.</p>
<p id="wikiguard-status" role="status" aria-live="polite">Working…</p>
<noscript><p>JavaScript is turned off, so the calculation cannot run. You will be taken to the page automatically in about {wait} seconds. If nothing happens, <a href="{slow_url_html}">continue to the page</a> after waiting.</p></noscript>
<p>If you run a program that reads this wiki, use the API with a descriptive User-Agent instead (see <a href="https://meta.wikimedia.org/wiki/User-Agent_policy">the User-Agent policy</a>).</p>
<p><small>Reference: <code>{reference_html}</code></small></p>
</main>
<script>{SOLVER_JS}</script>
</body>
</html>
"#
    )
}

/// The inline solver: pure-JavaScript SHA-256 (crypto.subtle is missing on plain-HTTP wikis),
/// run in slices so the page stays responsive, then a form POST to the verify path.
const SOLVER_JS: &str = r#"(function(){
var p=JSON.parse(document.getElementById('wikiguard-challenge').textContent);
var st=document.getElementById('wikiguard-status');
var K=[0x428a2f98,0x71374491,0xb5c0fbcf,0xe9b5dba5,0x3956c25b,0x59f111f1,0x923f82a4,0xab1c5ed5,0xd807aa98,0x12835b01,0x243185be,0x550c7dc3,0x72be5d74,0x80deb1fe,0x9bdc06a7,0xc19bf174,0xe49b69c1,0xefbe4786,0x0fc19dc6,0x240ca1cc,0x2de92c6f,0x4a7484aa,0x5cb0a9dc,0x76f988da,0x983e5152,0xa831c66d,0xb00327c8,0xbf597fc7,0xc6e00bf3,0xd5a79147,0x06ca6351,0x14292967,0x27b70a85,0x2e1b2138,0x4d2c6dfc,0x53380d13,0x650a7354,0x766a0abb,0x81c2c92e,0x92722c85,0xa2bfe8a1,0xa81a664b,0xc24b8b70,0xc76c51a3,0xd192e819,0xd6990624,0xf40e3585,0x106aa070,0x19a4c116,0x1e376c08,0x2748774c,0x34b0bcb5,0x391c0cb3,0x4ed8aa4a,0x5b9cca4f,0x682e6ff3,0x748f82ee,0x78a5636f,0x84c87814,0x8cc70208,0x90befffa,0xa4506ceb,0xbef9a3f7,0xc67178f2];
var W=new Int32Array(64);
function sha(s){var l=s.length,n=((l+9+63)>>6)<<6,m=new Uint8Array(n),i;for(i=0;i<l;i++)m[i]=s.charCodeAt(i)&255;m[l]=128;var b=l*8;m[n-4]=b>>>24;m[n-3]=b>>>16&255;m[n-2]=b>>>8&255;m[n-1]=b&255;
var H=[0x6a09e667,0xbb67ae85,0x3c6ef372,0xa54ff53a,0x510e527f,0x9b05688c,0x1f83d9ab,0x5be0cd19];
for(var o=0;o<n;o+=64){for(i=0;i<16;i++)W[i]=m[o+4*i]<<24|m[o+4*i+1]<<16|m[o+4*i+2]<<8|m[o+4*i+3];
for(i=16;i<64;i++){var x=W[i-15],y=W[i-2];W[i]=(((x>>>7|x<<25)^(x>>>18|x<<14)^(x>>>3))+((y>>>17|y<<15)^(y>>>19|y<<13)^(y>>>10))+W[i-7]+W[i-16])|0;}
var a=H[0],c=H[1],d=H[2],e=H[3],f=H[4],g=H[5],h=H[6],k=H[7];
for(i=0;i<64;i++){var t1=(k+((f>>>6|f<<26)^(f>>>11|f<<21)^(f>>>25|f<<7))+((f&g)^(~f&h))+K[i]+W[i])|0;var t2=(((a>>>2|a<<30)^(a>>>13|a<<19)^(a>>>22|a<<10))+((a&c)^(a&d)^(c&d)))|0;k=h;h=g;g=f;f=(e+t1)|0;e=d;d=c;c=a;a=(t1+t2)|0;}
H[0]=H[0]+a|0;H[1]=H[1]+c|0;H[2]=H[2]+d|0;H[3]=H[3]+e|0;H[4]=H[4]+f|0;H[5]=H[5]+g|0;H[6]=H[6]+h|0;H[7]=H[7]+k|0;}
return H;}
function lz(H){var z=0;for(var i=0;i<8;i++){var c=Math.clz32(H[i]);z+=c;if(c<32)break;}return z;}
var nonce=0,t0=Date.now();
function step(){var end=nonce+20000;for(;nonce<end;nonce++){if(lz(sha(p.challenge+nonce))>=p.difficulty){done(String(nonce));return;}}
st.textContent='Working… ('+Math.round((Date.now()-t0)/1000)+' s)';setTimeout(step,0);}
function done(n){st.textContent='Done. Taking you to the page…';var f=document.createElement('form');f.method='POST';f.action=p.verify;
[['challenge',p.challenge],['nonce',n],['return',p['return']]].forEach(function(kv){var i=document.createElement('input');i.type='hidden';i.name=kv[0];i.value=kv[1];f.appendChild(i);});
document.body.appendChild(f);f.submit();}
setTimeout(step,0);
})();"#;

/// A 403 page: what happened, why, and the reference to quote.
pub fn deny_page(reason: &str, reference: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><meta name=\"robots\" content=\"noindex\"><title>Access denied</title></head>\n<body>\n<main>\n<h1>Access denied</h1>\n<p>{}</p>\n<p>If you think this is a mistake, contact the wiki's administrators and quote this reference: <code>{}</code>.</p>\n</main>\n</body>\n</html>\n",
        escape_html(reason),
        escape_html(reference)
    )
}

/// A 429 page for browsers.
pub fn limit_page(retry_after_secs: u64, reference: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><meta name=\"robots\" content=\"noindex\"><title>Too many requests</title></head>\n<body>\n<main>\n<h1>Too many requests</h1>\n<p>Your browser has asked for more pages than this wiki can serve to one visitor right now. Please wait {} seconds and try again.</p>\n<p>Reference: <code>{}</code></p>\n</main>\n</body>\n</html>\n",
        retry_after_secs,
        escape_html(reference)
    )
}
