//! Loading a PKCS#11 module once per process, and naming its errors.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};

use super::uri::Pkcs11Uri;
use crate::error::{Error, HsmError};

/// The environment variable naming the module when the URI has no
/// `module-path`.
pub const MODULE_ENV: &str = "AKEX_PKCS11_MODULE";

/// Each module is loaded and initialised once per process (a second
/// `C_Initialize` fails, and finalising would end every other user).
pub(crate) fn module(path: &Path) -> Result<Pkcs11, Error> {
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    let mut modules = MODULES
        .get_or_init(|| Mutex::new(HashMap::new()))
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(m) = modules.get(path) {
        return Ok(m.clone());
    }
    let load_error = |reason: String| HsmError::ModuleLoad {
        path: path.display().to_string(),
        reason,
    };
    if !path.is_file() {
        return Err(load_error("no such file".into()).into());
    }
    let m = Pkcs11::new(path).map_err(|e| load_error(e.to_string()))?;
    match m.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(load_error(format!("C_Initialize: {}", reason(&e))).into()),
    }
    modules.insert(path.to_path_buf(), m.clone());
    Ok(m)
}

/// The module a URI names: its `module-path`, else [`MODULE_ENV`].
pub(crate) fn module_path(uri: &Pkcs11Uri) -> Result<PathBuf, Error> {
    if let Some(p) = &uri.module_path {
        return Ok(p.clone());
    }
    match std::env::var_os(MODULE_ENV).filter(|v| !v.is_empty()) {
        Some(p) => Ok(PathBuf::from(p)),
        None => Err(HsmError::NoModule.into()),
    }
}

/// `CKR_PIN_INCORRECT` for `PinIncorrect`: the return value's name.
pub(crate) fn reason(e: &CkError) -> String {
    match e {
        CkError::Pkcs11(rv, _) => {
            let mut name = String::from("CKR");
            for c in format!("{rv:?}").chars() {
                if c.is_ascii_uppercase() {
                    name.push('_');
                }
                name.push(c.to_ascii_uppercase());
            }
            name
        }
        other => other.to_string(),
    }
}

pub(crate) fn device(operation: &'static str, token: &str, e: CkError) -> Error {
    HsmError::Device {
        operation,
        token: token.to_string(),
        reason: reason(&e),
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_values_are_named() {
        let e = CkError::Pkcs11(RvError::PinIncorrect, cryptoki::context::Function::Login);
        assert_eq!(reason(&e), "CKR_PIN_INCORRECT");
        let e = CkError::Pkcs11(RvError::DeviceRemoved, cryptoki::context::Function::Sign);
        assert_eq!(reason(&e), "CKR_DEVICE_REMOVED");
    }
}
