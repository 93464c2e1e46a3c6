//! CA keys that live in a PKCS#11 token (an HSM, a cloud HSM's PKCS#11
//! library, SoftHSM2): generated inside the token as non-extractable,
//! sensitive objects, found by label, used through the [`CaSigner`] seam. The
//! private half never enters this process, so several CAs can share one key
//! without a key file being copied to each of them.
//!
//! **Owns:** opening the vendor module, finding the token by label (slot IDs
//! change when tokens are added), logging in, key generation, lookup, relabelling
//! and destruction (a rotation's slots),
//! reading the public key back, and signing (Ed25519 via `CKM_EDDSA`).
//!
//! Sessions: a PKCS#11 session serves one thread at a time, and login state is
//! per application (every session of this process is logged in once one is),
//! so a key keeps a small pool of sessions; a signer takes one, signs, and puts
//! it back. The pool grows with concurrent signers up to [`MAX_SESSIONS`].

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use secrecy::{ExposeSecret, SecretString};
use ssh_key::public::{Ed25519PublicKey, KeyData};
use ssh_key::{Algorithm, PublicKey, Signature};

use crate::backend::CaSigner;
use crate::error::SignerError;

/// Most sessions one key opens. Signing is short; more sessions than CPU
/// threads buy nothing, and tokens limit sessions per application.
pub const MAX_SESSIONS: usize = 16;

/// DER of the Ed25519 curve OID (1.3.101.112), the `CKA_EC_PARAMS` of an
/// Ed25519 key (RFC 8410).
const ED25519_PARAMS: [u8; 5] = [0x06, 0x03, 0x2b, 0x65, 0x70];

fn backend(what: &str, e: impl std::fmt::Display) -> SignerError {
    SignerError::Backend(format!("PKCS#11: {what}: {e}"))
}

/// An opened, logged-in PKCS#11 token. Take its keys with
/// [`Pkcs11Token::key`] or make them with [`Pkcs11Token::generate`].
pub struct Pkcs11Token {
    module: PathBuf,
    label: String,
    context: Pkcs11,
    slot: Slot,
    /// Keeps the login: one session stays open as long as the token does.
    _login: Session,
}

impl std::fmt::Debug for Pkcs11Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Token")
            .field("module", &self.module)
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

impl Pkcs11Token {
    /// Load `module`, find the initialised token labelled `label`, log in as
    /// its user with `pin`.
    ///
    /// # Errors
    /// [`SignerError::Backend`] naming the step that failed: a module that does
    /// not load, no token with that label (the labels present are listed), a
    /// wrong PIN.
    pub fn open(module: &Path, label: &str, pin: &SecretString) -> Result<Self, SignerError> {
        let context = Pkcs11::new(module)
            .map_err(|e| backend(&format!("load module {}", module.display()), e))?;
        // Another handle to the same module in this process (a command that
        // made keys, then serves) finds it initialised already: that is fine.
        match context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(())
            | Err(cryptoki::error::Error::Pkcs11(
                cryptoki::error::RvError::CryptokiAlreadyInitialized,
                _,
            )) => {}
            Err(e) => return Err(backend("initialise the module", e)),
        }
        let mut seen = Vec::new();
        let mut found = None;
        for slot in context
            .get_slots_with_token()
            .map_err(|e| backend("list slots", e))?
        {
            let info = context
                .get_token_info(slot)
                .map_err(|e| backend("read token info", e))?;
            let name = info.label().trim_end().to_owned();
            if name == label && info.token_initialized() {
                found = Some(slot);
                break;
            }
            seen.push(name);
        }
        let slot = found.ok_or_else(|| {
            SignerError::Backend(format!(
                "PKCS#11: no initialised token labelled {label:?} in {} (tokens: {})",
                module.display(),
                if seen.is_empty() {
                    "none".to_owned()
                } else {
                    seen.join(", ")
                }
            ))
        })?;
        let login = context
            .open_rw_session(slot)
            .map_err(|e| backend("open a session", e))?;
        let auth = cryptoki::types::AuthPin::from(pin.expose_secret().to_owned());
        // Login state belongs to the process: a second handle to a token this
        // process is logged in to already (a rotation beside the CA's keys)
        // finds it so.
        match login.login(UserType::User, Some(&auth)) {
            Ok(())
            | Err(cryptoki::error::Error::Pkcs11(
                cryptoki::error::RvError::UserAlreadyLoggedIn,
                _,
            )) => {}
            Err(e) => return Err(backend(&format!("log in to token {label:?}"), e)),
        }
        Ok(Self {
            module: module.to_path_buf(),
            label: label.to_owned(),
            context,
            slot,
            _login: login,
        })
    }

    /// The Ed25519 key labelled `key_label` in this token.
    ///
    /// # Errors
    /// [`SignerError::Backend`] when the token has no such private key, more
    /// than one, or a public half that cannot be read; a key of another type
    /// is [`SignerError::UnsupportedCaKey`].
    pub fn key(&self, key_label: &str) -> Result<Pkcs11CaKey, SignerError> {
        let session = self.session()?;
        let private = only_one(&session, ObjectClass::PRIVATE_KEY, key_label, &self.label)?
            .ok_or_else(|| {
                SignerError::Backend(format!(
                    "PKCS#11: token {:?} has no private key labelled {key_label:?} \
                 (create it with `rampart-ca pkcs11-keygen`)",
                    self.label
                ))
            })?;
        let public = only_one(&session, ObjectClass::PUBLIC_KEY, key_label, &self.label)?
            .ok_or_else(|| {
                SignerError::Backend(format!(
                    "PKCS#11: token {:?} has no public key labelled {key_label:?} beside its private key",
                    self.label
                ))
            })?;
        let public = read_ed25519_public(&session, public, key_label)?;
        Ok(Pkcs11CaKey {
            label: key_label.to_owned(),
            public,
            private,
            pool: Arc::new(SessionPool::new(self.context.clone(), self.slot, session)),
        })
    }

    /// Generate an Ed25519 key pair labelled `key_label` inside the token:
    /// persistent, the private half sensitive and not extractable. Refuses a
    /// label that is already taken (CA keys are never replaced in place).
    ///
    /// # Errors
    /// [`SignerError::Backend`] for a taken label or a token that cannot make
    /// Ed25519 keys.
    pub fn generate(&self, key_label: &str) -> Result<Pkcs11CaKey, SignerError> {
        {
            let session = self.session()?;
            for class in [ObjectClass::PRIVATE_KEY, ObjectClass::PUBLIC_KEY] {
                if only_one(&session, class, key_label, &self.label)?.is_some() {
                    return Err(SignerError::Backend(format!(
                        "PKCS#11: token {:?} already holds a key labelled {key_label:?}; \
                         CA keys are never replaced in place",
                        self.label
                    )));
                }
            }
            let label = key_label.as_bytes().to_vec();
            let public = [
                Attribute::Token(true),
                Attribute::Private(false),
                Attribute::Verify(true),
                Attribute::EcParams(ED25519_PARAMS.to_vec()),
                Attribute::Label(label.clone()),
            ];
            let private = [
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Sign(true),
                Attribute::Label(label),
            ];
            session
                .generate_key_pair(&Mechanism::EccEdwardsKeyPairGen, &public, &private)
                .map_err(|e| backend(&format!("generate Ed25519 key {key_label:?}"), e))?;
        }
        self.key(key_label)
    }

    /// The public half of the key labelled `key_label` and its
    /// `CKA_END_DATE` (when a rotation replaced it), or `None` when the token
    /// holds no such public key. Needs no signing: the rotation slots
    /// (`L.next`, `L.previous`) are published from this.
    ///
    /// # Errors
    /// [`SignerError::Backend`] for more than one such key or one that cannot
    /// be read.
    pub fn public_key(&self, key_label: &str) -> Result<Option<TokenPublicKey>, SignerError> {
        let session = self.session()?;
        let Some(object) = only_one(&session, ObjectClass::PUBLIC_KEY, key_label, &self.label)?
        else {
            return Ok(None);
        };
        let key = read_ed25519_public(&session, object, key_label)?;
        let end_date = session
            .get_attributes(object, &[AttributeType::EndDate])
            .map_err(|e| backend(&format!("read the end date of {key_label:?}"), e))?
            .into_iter()
            .find_map(|a| match a {
                Attribute::EndDate(d) => from_ck_date(&d),
                _ => None,
            });
        Ok(Some(TokenPublicKey { key, end_date }))
    }

    /// Activate a rotation's next key: the pair labelled `current` takes the
    /// label `previous` and the `CKA_END_DATE` `replaced_on`, then the pair
    /// labelled `next` takes `current`. Each half (private, public) moves on
    /// its own, and only while a `next` half is left, so a move cut short by
    /// a crash finishes when run again, and a finished one is left alone.
    ///
    /// # Errors
    /// [`SignerError::Backend`] when `previous` is taken, or the token refuses
    /// a change.
    pub fn activate_next(
        &self,
        current: &str,
        next: &str,
        previous: &str,
        replaced_on: chrono::NaiveDate,
    ) -> Result<(), SignerError> {
        let session = self.session()?;
        for class in [ObjectClass::PRIVATE_KEY, ObjectClass::PUBLIC_KEY] {
            let Some(coming) = only_one(&session, class, next, &self.label)? else {
                continue;
            };
            if let Some(going) = only_one(&session, class, current, &self.label)? {
                if only_one(&session, class, previous, &self.label)?.is_some() {
                    return Err(SignerError::Backend(format!(
                        "PKCS#11: token {:?} already holds a key labelled {previous:?}; \
                         retire it before activating another",
                        self.label
                    )));
                }
                session
                    .update_attributes(
                        going,
                        &[
                            Attribute::Label(previous.as_bytes().to_vec()),
                            Attribute::EndDate(to_ck_date(replaced_on)),
                        ],
                    )
                    .map_err(|e| backend(&format!("relabel {current:?} as {previous:?}"), e))?;
            }
            session
                .update_attributes(coming, &[Attribute::Label(current.as_bytes().to_vec())])
                .map_err(|e| backend(&format!("relabel {next:?} as {current:?}"), e))?;
        }
        Ok(())
    }

    /// Whether any half of the pair labelled `key_label` is in the token.
    ///
    /// # Errors
    /// [`SignerError::Backend`] when the token cannot be searched.
    pub fn holds_any(&self, key_label: &str) -> Result<bool, SignerError> {
        let session = self.session()?;
        for class in [ObjectClass::PRIVATE_KEY, ObjectClass::PUBLIC_KEY] {
            if only_one(&session, class, key_label, &self.label)?.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Destroy both halves of the key labelled `key_label` (a retired CA
    /// key). A half already gone is not an error.
    ///
    /// # Errors
    /// [`SignerError::Backend`] when the token refuses.
    pub fn destroy(&self, key_label: &str) -> Result<(), SignerError> {
        let session = self.session()?;
        for class in [ObjectClass::PRIVATE_KEY, ObjectClass::PUBLIC_KEY] {
            if let Some(object) = only_one(&session, class, key_label, &self.label)? {
                session
                    .destroy_object(object)
                    .map_err(|e| backend(&format!("destroy {key_label:?}"), e))?;
            }
        }
        Ok(())
    }

    fn session(&self) -> Result<Session, SignerError> {
        self.context
            .open_rw_session(self.slot)
            .map_err(|e| backend("open a session", e))
    }
}

/// A public key in a token, as [`Pkcs11Token::public_key`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenPublicKey {
    /// The key (its comment is its label).
    pub key: PublicKey,
    /// Its `CKA_END_DATE`, if set.
    pub end_date: Option<chrono::NaiveDate>,
}

/// A `CK_DATE` is three runs of ASCII digits.
fn to_ck_date(day: chrono::NaiveDate) -> cryptoki::types::Date {
    use chrono::Datelike as _;
    let text = format!("{:04}{:02}{:02}", day.year(), day.month(), day.day());
    let b = text.as_bytes();
    let take = |i: usize| b.get(i).copied().unwrap_or(b'0');
    cryptoki::types::Date::new(
        [take(0), take(1), take(2), take(3)],
        [take(4), take(5)],
        [take(6), take(7)],
    )
}

/// `None` for an empty date (all blank or zero, as tokens leave it unset).
fn from_ck_date(date: &cryptoki::types::Date) -> Option<chrono::NaiveDate> {
    let text: String = date
        .year
        .iter()
        .chain(date.month.iter())
        .chain(date.day.iter())
        .map(|b| char::from(*b))
        .collect();
    chrono::NaiveDate::parse_from_str(&text, "%Y%m%d").ok()
}

/// The one object of `class` labelled `label`; `None` when there is none.
fn only_one(
    session: &Session,
    class: ObjectClass,
    label: &str,
    token: &str,
) -> Result<Option<ObjectHandle>, SignerError> {
    let found = session
        .find_objects(&[
            Attribute::Class(class),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
        .map_err(|e| backend("find objects", e))?;
    match found.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(*one)),
        many => Err(SignerError::Backend(format!(
            "PKCS#11: token {token:?} holds {} keys labelled {label:?}; a CA key label must be unique",
            many.len()
        ))),
    }
}

/// The Ed25519 public key of `object`. Tokens store `CKA_EC_POINT` either as
/// the DER OCTET STRING PKCS#11 3.0 prescribes (`04 20` + 32 bytes) or as the
/// bare 32 bytes; both are read.
fn read_ed25519_public(
    session: &Session,
    object: ObjectHandle,
    label: &str,
) -> Result<PublicKey, SignerError> {
    let attrs = session
        .get_attributes(object, &[AttributeType::KeyType, AttributeType::EcPoint])
        .map_err(|e| backend(&format!("read public key {label:?}"), e))?;
    let mut point = None;
    for attr in attrs {
        match attr {
            Attribute::KeyType(kind) if kind != KeyType::EC_EDWARDS => {
                return Err(SignerError::UnsupportedCaKey {
                    key_type: format!("PKCS#11 key type {kind}"),
                    reason: "Rampart signs with Ed25519 keys in a token".to_owned(),
                })
            }
            Attribute::EcPoint(p) => point = Some(p),
            _ => {}
        }
    }
    let point = point.ok_or_else(|| {
        SignerError::Backend(format!("PKCS#11: public key {label:?} has no CKA_EC_POINT"))
    })?;
    let raw: &[u8] = match point.as_slice() {
        [0x04, 0x20, rest @ ..] if rest.len() == 32 => rest,
        bare if bare.len() == 32 => bare,
        _ => {
            return Err(SignerError::Backend(format!(
                "PKCS#11: public key {label:?} is not a 32-byte Ed25519 point"
            )))
        }
    };
    let key = Ed25519PublicKey::try_from(raw)
        .map_err(|e| backend(&format!("public key {label:?}"), e))?;
    Ok(PublicKey::new(KeyData::Ed25519(key), label))
}

/// Sessions for one key: taken to sign, put back after.
struct SessionPool {
    context: Pkcs11,
    slot: Slot,
    state: Mutex<PoolState>,
    returned: Condvar,
}

struct PoolState {
    idle: Vec<Session>,
    /// Open sessions, idle or in use.
    open: usize,
}

impl SessionPool {
    fn new(context: Pkcs11, slot: Slot, first: Session) -> Self {
        Self {
            context,
            slot,
            state: Mutex::new(PoolState {
                idle: vec![first],
                open: 1,
            }),
            returned: Condvar::new(),
        }
    }

    fn take(&self) -> Result<Session, SignerError> {
        let poisoned = || SignerError::Backend("PKCS#11: session pool poisoned".to_owned());
        let mut state = self.state.lock().map_err(|_| poisoned())?;
        loop {
            if let Some(s) = state.idle.pop() {
                return Ok(s);
            }
            if state.open < MAX_SESSIONS {
                state.open += 1;
                drop(state);
                return self.context.open_rw_session(self.slot).map_err(|e| {
                    if let Ok(mut state) = self.state.lock() {
                        state.open -= 1;
                    }
                    backend("open a session", e)
                });
            }
            state = self.returned.wait(state).map_err(|_| poisoned())?;
        }
    }

    fn give_back(&self, session: Session) {
        if let Ok(mut state) = self.state.lock() {
            state.idle.push(session);
            self.returned.notify_one();
        }
    }
}

/// An Ed25519 CA key held in a PKCS#11 token.
pub struct Pkcs11CaKey {
    label: String,
    public: PublicKey,
    private: ObjectHandle,
    pool: Arc<SessionPool>,
}

impl std::fmt::Debug for Pkcs11CaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11CaKey")
            .field("label", &self.label)
            .field("public", &self.public.fingerprint(Default::default()))
            .finish_non_exhaustive()
    }
}

impl Pkcs11CaKey {
    /// The key's label in the token.
    pub fn label(&self) -> &str {
        &self.label
    }
}

impl CaSigner for Pkcs11CaKey {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn sign_raw(&self, data: &[u8]) -> Result<Signature, SignerError> {
        let session = self.pool.take()?;
        let signed = session.sign(
            &Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
            self.private,
            data,
        );
        // A session whose operation failed is still usable (C_Sign ends the
        // operation either way).
        self.pool.give_back(session);
        let signature = signed.map_err(|e| backend(&format!("sign with {:?}", self.label), e))?;
        Signature::new(Algorithm::Ed25519, signature)
            .map_err(|e| backend(&format!("signature from {:?}", self.label), e))
    }
}
