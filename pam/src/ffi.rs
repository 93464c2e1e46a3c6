//! The C ABI: the PAM service-module entry points (`pam_sm_authenticate`,
//! `pam_sm_setcred`, `pam_sm_acct_mgmt`, see pam_sm_authenticate(3)), the few
//! libpam calls the module makes, and the two libc calls behind [`Host`].
//!
//! This is the only module of the crate allowed `unsafe`; every block says why it
//! is sound. No panic crosses into the host process: each entry point runs its
//! body under `catch_unwind` and turns a panic into `PAM_AUTH_ERR` (unwinding
//! into C is undefined behaviour, and `panic = "abort"` would kill `sudo`).
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::args::{log_file_hint, Args};
use crate::auth::{append_log_file, decide, log_line, message, Host, Request};

/// Opaque `pam_handle_t`.
#[repr(C)]
#[derive(Debug)]
pub struct PamHandle {
    _private: [u8; 0],
}

// <security/_pam_types.h>
const PAM_SUCCESS: c_int = 0;
const PAM_AUTH_ERR: c_int = 7;
const PAM_SERVICE: c_int = 1;
const PAM_RHOST: c_int = 4;

#[link(name = "pam")]
extern "C" {
    fn pam_get_user(pamh: *mut PamHandle, user: *mut *const c_char, prompt: *const c_char)
        -> c_int;
    fn pam_get_item(pamh: *const PamHandle, item_type: c_int, item: *mut *const c_void) -> c_int;
    fn pam_getenv(pamh: *mut PamHandle, name: *const c_char) -> *const c_char;
    fn pam_syslog(pamh: *const PamHandle, priority: c_int, fmt: *const c_char, ...);
}

/// `auth`: the step-up check.
///
/// # Safety
/// Called by libpam with a valid handle and `argc` valid C strings in `argv`.
#[no_mangle]
pub unsafe extern "C" fn pam_sm_authenticate(
    pamh: *mut PamHandle,
    _flags: c_int,
    argc: c_int,
    argv: *const *const c_char,
) -> c_int {
    guarded(pamh, || run(pamh, argc, argv))
}

/// `auth` credentials: nothing to establish.
///
/// # Safety
/// Called by libpam; the arguments are not used.
#[no_mangle]
pub unsafe extern "C" fn pam_sm_setcred(
    _pamh: *mut PamHandle,
    _flags: c_int,
    _argc: c_int,
    _argv: *const *const c_char,
) -> c_int {
    PAM_SUCCESS
}

/// `account`: the same checks as `auth`, so the module can also gate accounts.
///
/// # Safety
/// As [`pam_sm_authenticate`].
#[no_mangle]
pub unsafe extern "C" fn pam_sm_acct_mgmt(
    pamh: *mut PamHandle,
    _flags: c_int,
    argc: c_int,
    argv: *const *const c_char,
) -> c_int {
    guarded(pamh, || run(pamh, argc, argv))
}

fn guarded(pamh: *mut PamHandle, f: impl FnOnce() -> c_int) -> c_int {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(code) => code,
        Err(_) => {
            syslog(
                pamh,
                libc::LOG_ERR,
                "refused: internal error (panic caught)",
            );
            PAM_AUTH_ERR
        }
    }
}

fn run(pamh: *mut PamHandle, argc: c_int, argv: *const *const c_char) -> c_int {
    let words = arguments(argc, argv);
    let req = request(pamh);
    // The module's one read of the wall clock: the checks below take `now` as an
    // argument (their tests pass a fixed one), and a PAM module has no state to
    // hold a clock object in.
    #[allow(clippy::disallowed_methods)]
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let args = Args::parse(words.iter().map(String::as_str));
    let outcome = match &args {
        Ok(a) => decide(a, &req, &OsHost, now),
        Err(e) => Err(e.clone().into()),
    };
    let user = req.user.as_deref().unwrap_or("(unknown user)");
    let priority = if outcome.is_ok() {
        libc::LOG_INFO
    } else {
        libc::LOG_NOTICE
    };
    syslog(pamh, priority, &message(user, &outcome));
    let log_file = match &args {
        Ok(a) => a.log_file.clone(),
        Err(_) => log_file_hint(words.iter().map(String::as_str)),
    };
    if let Some(path) = log_file {
        append_log_file(&path, &log_line(&req, &outcome));
    }
    if outcome.is_ok() {
        PAM_SUCCESS
    } else {
        PAM_AUTH_ERR
    }
}

fn arguments(argc: c_int, argv: *const *const c_char) -> Vec<String> {
    let n = usize::try_from(argc).unwrap_or(0);
    if argv.is_null() {
        return Vec::new();
    }
    (0..n)
        .filter_map(|i| {
            // SAFETY: libpam passes `argc` entries in `argv` (pam_sm_authenticate(3)),
            // so `argv.add(i)` for i < argc stays inside that array.
            let p = unsafe { *argv.add(i) };
            cstr(p)
        })
        .collect()
}

fn cstr(p: *const c_char) -> Option<String> {
    if p.is_null() {
        return None;
    }
    // SAFETY: every non-null pointer passed here comes from libpam (argv, items,
    // the PAM environment, the user name), which hands out NUL-terminated strings
    // that stay valid for the duration of this call; we copy before returning.
    let s = unsafe { CStr::from_ptr(p) };
    Some(s.to_string_lossy().into_owned())
}

fn request(pamh: *mut PamHandle) -> Request {
    let mut user: *const c_char = std::ptr::null();
    // SAFETY: `pamh` is the live handle libpam gave us; `user` is a valid out
    // pointer; a null prompt asks libpam for its default (pam_get_user(3)).
    let rc = unsafe { pam_get_user(pamh, &mut user, std::ptr::null()) };
    let user = if rc == PAM_SUCCESS { cstr(user) } else { None };
    let service = item(pamh, PAM_SERVICE).unwrap_or_else(|| "unknown".to_owned());
    let rhost = item(pamh, PAM_RHOST);
    // SAFETY: valid handle and a NUL-terminated literal; pam_getenv(3) returns a
    // pointer into the handle's environment (not to be freed) or null.
    let env = unsafe { pam_getenv(pamh, c"SSH_AUTH_SOCK".as_ptr()) };
    let agent_socket = cstr(env)
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("SSH_AUTH_SOCK")
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
        });
    Request {
        service,
        user,
        rhost,
        agent_socket,
    }
}

fn item(pamh: *mut PamHandle, kind: c_int) -> Option<String> {
    let mut p: *const c_void = std::ptr::null();
    // SAFETY: valid handle and out pointer; for PAM_SERVICE and PAM_RHOST the item
    // is a NUL-terminated string owned by libpam (pam_get_item(3)).
    let rc = unsafe { pam_get_item(pamh, kind, &mut p) };
    if rc != PAM_SUCCESS {
        return None;
    }
    cstr(p.cast::<c_char>())
}

fn syslog(pamh: *mut PamHandle, priority: c_int, msg: &str) {
    let Ok(msg) = CString::new(msg.replace('\0', " ")) else {
        return;
    };
    // SAFETY: valid handle; the format is the literal "%s" and its one argument a
    // NUL-terminated string that outlives the call. pam_syslog(3) logs with the
    // LOG_AUTHPRIV facility and prefixes "pam_rampart(SERVICE:TYPE): ".
    unsafe { pam_syslog(pamh, priority, c"%s".as_ptr(), msg.as_ptr()) };
}

/// [`Host`] backed by getpwnam_r(3) and SO_PEERCRED (unix(7)).
#[derive(Debug)]
pub struct OsHost;

impl Host for OsHost {
    fn user_uid(&self, user: &str) -> Option<u32> {
        let name = CString::new(user).ok()?;
        let mut buf = vec![0 as c_char; 16 * 1024];
        // SAFETY: `passwd` is plain old data; all-zero is a valid value to be
        // overwritten by getpwnam_r.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call and `buf.len()` is the real
        // size of `buf`; getpwnam_r(3) is the thread-safe variant.
        let rc = unsafe {
            libc::getpwnam_r(
                name.as_ptr(),
                &mut pwd,
                buf.as_mut_ptr(),
                buf.len(),
                &mut result,
            )
        };
        if rc != 0 || result.is_null() {
            return None;
        }
        Some(pwd.pw_uid)
    }

    fn peer_uid(&self, stream: &UnixStream) -> Option<u32> {
        // SAFETY: `ucred` is plain old data; all-zero is valid.
        let mut cred: libc::ucred = unsafe { std::mem::zeroed() };
        let mut len = libc::socklen_t::try_from(std::mem::size_of::<libc::ucred>()).ok()?;
        // SAFETY: the fd is open for the lifetime of `stream`; `cred`/`len` are valid
        // out pointers sized for SO_PEERCRED's `struct ucred` (unix(7)).
        let rc = unsafe {
            libc::getsockopt(
                stream.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PEERCRED,
                (&mut cred as *mut libc::ucred).cast::<c_void>(),
                &mut len,
            )
        };
        if rc != 0 {
            return None;
        }
        Some(cred.uid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_facts_for_this_process() {
        assert_eq!(OsHost.user_uid("root"), Some(0));
        assert_eq!(OsHost.user_uid("no-such-user-rampart-xyz"), None);
        let (a, _b) = UnixStream::pair().unwrap();
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        assert_eq!(OsHost.peer_uid(&a), Some(me));
    }
}
