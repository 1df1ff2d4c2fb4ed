//! The built library, loaded as the server loads a plugin: it exports the declaration, names
//! itself `testkit`, and catches a panic inside its own copy of the Rust runtime.
#![allow(unsafe_code)]

use std::ffi::{CStr, c_void};
use std::path::PathBuf;
use t3_plugin_abi::{ABI_MAJOR, Buf, DECLARE_SYMBOL, DeclareFn, PluginDecl, STATUS_OK, STATUS_PANIC, Sample};

/// The cdylib cargo built beside this test (`target/<profile>/deps`).
fn library_path() -> PathBuf {
    let deps = std::env::current_exe().unwrap().parent().unwrap().to_path_buf();
    let name = format!("{}t3_plugin_testkit{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX);
    [deps.join(&name), deps.parent().unwrap().join(&name)]
        .into_iter()
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("no {name} in {} or its parent", deps.display()))
}

#[test]
fn the_cdylib_declares_the_testkit_and_contains_its_panics() {
    let path = library_path();
    // SAFETY: the library is this crate's cdylib; loading it runs no code of ours.
    let library = unsafe { libloading::Library::new(&path) }.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    // SAFETY: the crate exports DECLARE_SYMBOL with the signature DeclareFn (export_plugin!).
    let declare = unsafe { library.get::<DeclareFn>(DECLARE_SYMBOL.as_bytes()) }.expect("the declare symbol");
    // SAFETY: the declaration is a static of the library, which stays loaded until the end of the test.
    let decl: &PluginDecl = unsafe { &*declare() };
    assert_eq!(decl.abi_major, ABI_MAJOR);
    assert_eq!(decl.size as usize, size_of::<PluginDecl>());
    // SAFETY: the name and version are static NUL-terminated strings of the library.
    let (name, version) = unsafe { (CStr::from_ptr(decl.name), CStr::from_ptr(decl.version)) };
    assert_eq!(name.to_str(), Ok("testkit"));
    assert_eq!(version.to_str(), Ok(env!("CARGO_PKG_VERSION")));

    let config = br#"{"panic_in": "read"}"#;
    let mut out = Buf::EMPTY;
    let mut device: *mut c_void = std::ptr::null_mut();
    // SAFETY: the config is readable for its length; `device` and `out` are valid slots.
    assert_eq!(unsafe { (decl.open)(config.as_ptr(), config.len(), &mut device, &mut out) }, STATUS_OK);
    let mut samples = [Sample::new(0, 0.0, 0)];
    // SAFETY: a live handle; one point and one sample; `out` is a valid slot.
    let status = unsafe { (decl.read)(device, [0u32].as_ptr(), 1, samples.as_mut_ptr(), &mut out) };
    assert_eq!(status, STATUS_PANIC);
    // SAFETY: the plugin returned `len` bytes, freed right after they are copied.
    let message = unsafe { String::from_utf8_lossy(std::slice::from_raw_parts(out.ptr, out.len)).into_owned() };
    // SAFETY: the buffer came from the plugin and is freed once.
    unsafe { (decl.free_buf)(out) };
    assert_eq!(message, "the plugin panicked: testkit: panic_in = read");
    // SAFETY: the handle came from `open` and is closed once.
    unsafe { (decl.close)(device) };
}
