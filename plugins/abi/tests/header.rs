//! `t3000_plugin.h` agrees with the crate: a C program generated from the tables below includes the
//! header, checks at compile time that every field has the C type the table pairs with its Rust
//! type (a mismatch is an incompatible-pointer error under `-Werror`), and prints the size, offset
//! and alignment of every field and record and the value of every constant; the test compares them
//! with `offset_of!`, `size_of` and the crate's constants. The tables cannot fall behind either
//! side: every Rust field is named without `..` (a new one does not compile), every record must be
//! tiled by its listed fields on both sides (a field added to the header only leaves a hole or
//! changes the size), and every `pub const` of the crate and `#define T3_*` of the header must be
//! in the constant table.

use crate::cc;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{c_char, c_void};
use std::marker::PhantomData;
use std::mem::{align_of, offset_of, size_of};
use t3_plugin_abi::{self as abi, Buf, PluginDecl, Sample};

/// One field of a record.
struct Field {
    name: &'static str,
    /// The field's C type as a declarator of `@` (`uint8_t @[3]`, `int32_t (*@)(T3Buf *out)`).
    c_type: &'static str,
    offset: usize,
    size: usize,
    align: usize,
}

/// A `#[repr(C)]` struct and its C twin.
struct Record {
    c: &'static str,
    size: usize,
    align: usize,
    fields: Vec<Field>,
}

/// A record's table: `Rust as "CName" { field: RustType = "C declarator of @", .. }`.
macro_rules! record {
    ($rust:ident as $c:literal { $($f:ident : $t:ty = $ct:literal),* $(,)? }) => {{
        #[allow(dead_code)]
        fn every_field_is_listed_with_its_type(r: &$rust) {
            // No `..`: a field added to the Rust struct and not to the table does not compile.
            let $rust { $($f: _),* } = r;
            // No coercion between these types: each field has exactly the type in the table.
            $(let _: &$t = &r.$f;)*
        }
        Record {
            c: $c,
            size: size_of::<$rust>(),
            align: align_of::<$rust>(),
            fields: vec![$(Field {
                name: stringify!($f),
                c_type: $ct,
                offset: offset_of!($rust, $f),
                size: size_of::<$t>(),
                align: align_of::<$t>(),
            }),*],
        }
    }};
}

fn records() -> Vec<Record> {
    vec![
        record!(Buf as "T3Buf" {
            ptr: *mut u8 = "uint8_t *@",
            len: usize = "size_t @",
        }),
        record!(Sample as "T3Sample" {
            point: u32 = "uint32_t @",
            quality: u8 = "uint8_t @",
            reserved: [u8; 3] = "uint8_t @[3]",
            value: f64 = "double @",
            ts_us: i64 = "int64_t @",
        }),
        record!(PluginDecl as "T3PluginDecl" {
            abi_major: u16 = "uint16_t @",
            abi_minor: u16 = "uint16_t @",
            size: u32 = "uint32_t @",
            name: *const c_char = "const char *@",
            version: *const c_char = "const char *@",
            free_buf: unsafe extern "C" fn(Buf) = "void (*@)(T3Buf buf)",
            describe: unsafe extern "C" fn(*mut Buf) -> i32 = "int32_t (*@)(T3Buf *out)",
            check_config: unsafe extern "C" fn(*const u8, usize, *mut Buf) -> i32
                = "int32_t (*@)(const uint8_t *config, size_t len, T3Buf *out)",
            open: unsafe extern "C" fn(*const u8, usize, *mut *mut c_void, *mut Buf) -> i32
                = "int32_t (*@)(const uint8_t *config, size_t len, void **device, T3Buf *out)",
            close: unsafe extern "C" fn(*mut c_void) = "void (*@)(void *device)",
            points: unsafe extern "C" fn(*mut c_void, *mut Buf) -> i32 = "int32_t (*@)(void *device, T3Buf *out)",
            read: unsafe extern "C" fn(*mut c_void, *const u32, usize, *mut Sample, *mut Buf) -> i32
                = "int32_t (*@)(void *device, const uint32_t *points, size_t n, T3Sample *samples, T3Buf *out)",
            write: unsafe extern "C" fn(*mut c_void, u32, f64, u8, *mut Buf) -> i32
                = "int32_t (*@)(void *device, uint32_t point, double value, uint8_t priority, T3Buf *out)",
            relinquish: unsafe extern "C" fn(*mut c_void, u32, u8, *mut Buf) -> i32
                = "int32_t (*@)(void *device, uint32_t point, uint8_t priority, T3Buf *out)",
            health: unsafe extern "C" fn(*mut c_void, *mut Buf) -> i32 = "int32_t (*@)(void *device, T3Buf *out)",
            discover: unsafe extern "C" fn(*const u8, usize, *mut Buf) -> i32
                = "int32_t (*@)(const uint8_t *request, size_t len, T3Buf *out)",
            subscribe: unsafe extern "C" fn(
                *mut c_void,
                *const u32,
                usize,
                unsafe extern "C" fn(*mut c_void, *const Sample, usize),
                *mut c_void,
                *mut Buf,
            ) -> i32 = "int32_t (*@)(void *device, const uint32_t *points, size_t n, \
                        void (*push)(void *ctx, const T3Sample *samples, size_t n), void *ctx, T3Buf *out)",
        }),
    ]
}

/// A type alias and its C `typedef`.
struct Alias {
    c: &'static str,
    c_type: &'static str,
    size: usize,
    align: usize,
}

/// `RustAlias = "CName": RustType = "C declarator of @"`; the alias must be exactly that type.
macro_rules! alias {
    ($rust:ty = $c:literal : $t:ty = $ct:literal) => {{
        let _: PhantomData<$t> = PhantomData::<$rust>;
        Alias { c: $c, c_type: $ct, size: size_of::<$t>(), align: align_of::<$t>() }
    }};
}

fn aliases() -> Vec<Alias> {
    vec![
        alias!(abi::Status = "T3Status": i32 = "int32_t @"),
        alias!(abi::PushFn = "T3PushFn": unsafe extern "C" fn(*mut c_void, *const Sample, usize)
            = "void (*@)(void *ctx, const T3Sample *samples, size_t n)"),
    ]
}

/// The signature of the one exported function, as `DeclareFn` and as the header's prototype.
const DECLARE_C_TYPE: &str = "const T3PluginDecl *(*@)(void)";
const _: PhantomData<unsafe extern "C" fn() -> *const PluginDecl> = PhantomData::<abi::DeclareFn>;

#[derive(Debug, Clone, PartialEq)]
enum Value {
    Int(i64),
    Str(&'static str),
}

/// Every constant: its name in the header, its name in the crate, and the crate's value.
fn constants() -> Vec<(&'static str, &'static str, Value)> {
    macro_rules! int {
        ($c:literal = $rust:ident) => {
            ($c, stringify!($rust), Value::Int(i64::from(abi::$rust)))
        };
    }
    vec![
        int!("T3_ABI_MAJOR" = ABI_MAJOR),
        int!("T3_ABI_MINOR" = ABI_MINOR),
        ("T3_DECLARE_SYMBOL", "DECLARE_SYMBOL", Value::Str(abi::DECLARE_SYMBOL)),
        int!("T3_STATUS_OK" = STATUS_OK),
        int!("T3_STATUS_CONFIG" = STATUS_CONFIG),
        int!("T3_STATUS_UNREACHABLE" = STATUS_UNREACHABLE),
        int!("T3_STATUS_DEVICE" = STATUS_DEVICE),
        int!("T3_STATUS_UNSUPPORTED" = STATUS_UNSUPPORTED),
        int!("T3_STATUS_INVALID" = STATUS_INVALID),
        int!("T3_STATUS_PANIC" = STATUS_PANIC),
        int!("T3_STATUS_INTERNAL" = STATUS_INTERNAL),
        int!("T3_QUALITY_GOOD" = QUALITY_GOOD),
        int!("T3_QUALITY_GOOD_LOCAL_OVERRIDE" = QUALITY_GOOD_LOCAL_OVERRIDE),
        int!("T3_QUALITY_UNCERTAIN" = QUALITY_UNCERTAIN),
        int!("T3_QUALITY_BAD" = QUALITY_BAD),
        int!("T3_QUALITY_BAD_CONFIG_ERROR" = QUALITY_BAD_CONFIG_ERROR),
        int!("T3_QUALITY_BAD_DEVICE_FAILURE" = QUALITY_BAD_DEVICE_FAILURE),
        int!("T3_QUALITY_BAD_SENSOR_FAILURE" = QUALITY_BAD_SENSOR_FAILURE),
        int!("T3_QUALITY_BAD_COMM_FAILURE" = QUALITY_BAD_COMM_FAILURE),
        int!("T3_QUALITY_BAD_OUT_OF_SERVICE" = QUALITY_BAD_OUT_OF_SERVICE),
    ]
}

/// The name every plugin exports, as this test spells it in C (the probe defines it, so a
/// prototype of another name or type in the header does not compile).
const DECLARE_NAME: &str = "t3000_plugin_declare";

fn c_decl(c_type: &str, name: &str) -> String {
    assert_eq!(c_type.matches('@').count(), 1, "one @ in {c_type}");
    c_type.replace('@', name)
}

/// The probe: C99 (and C++) that prints `key value` lines.
fn probe_source() -> String {
    let mut types = String::new();
    let mut checks = String::new();
    let mut prints = String::new();
    let mut print = |key: String, expr: String| {
        prints.push_str(&format!("    printf(\"%s %lu\\n\", \"{key}\", (unsigned long)({expr}));\n"));
    };
    for r in records() {
        let c = r.c;
        types.push_str(&format!("struct t3a_{c} {{ char c; {c} x; }};\n"));
        print(format!("{c}.size"), format!("sizeof({c})"));
        print(format!("{c}.align"), format!("offsetof(struct t3a_{c}, x)"));
        for f in &r.fields {
            let t = format!("t3t_{c}_{}", f.name);
            types.push_str(&format!("typedef {};\n", c_decl(f.c_type, &t)));
            types.push_str(&format!("struct t3a_{c}_{} {{ char c; {t} x; }};\n", f.name));
            checks.push_str(&format!("    {{ {t} *p = &r_{c}->{n}; (void)p; }}\n", n = f.name));
            print(format!("{c}.{}.offset", f.name), format!("offsetof({c}, {})", f.name));
            print(format!("{c}.{}.size", f.name), format!("sizeof((({c} *)0)->{})", f.name));
            print(format!("{c}.{}.align", f.name), format!("offsetof(struct t3a_{c}_{}, x)", f.name));
        }
    }
    for a in aliases() {
        let c = a.c;
        let t = format!("t3t_{c}");
        types.push_str(&format!("typedef {};\n", c_decl(a.c_type, &t)));
        types.push_str(&format!("struct t3a_{c} {{ char c; {c} x; }};\n"));
        checks.push_str(&format!("    {{ {c} v; {t} *p = &v; (void)p; }}\n"));
        print(format!("{c}.size"), format!("sizeof({c})"));
        print(format!("{c}.align"), format!("offsetof(struct t3a_{c}, x)"));
    }
    types.push_str(&format!("typedef {};\n", c_decl(DECLARE_C_TYPE, "t3t_declare")));
    checks.push_str(&format!("    {{ t3t_declare f = &{DECLARE_NAME}; (void)f; }}\n"));
    for (c, _, value) in constants() {
        match value {
            Value::Int(_) => prints.push_str(&format!("    printf(\"%s %lld\\n\", \"{c}\", (long long)({c}));\n")),
            Value::Str(_) => prints.push_str(&format!("    printf(\"%s %s\\n\", \"{c}\", {c});\n")),
        }
    }
    let params = records().iter().map(|r| format!("{c} *r_{c}", c = r.c)).collect::<Vec<_>>().join(", ");
    format!(
        r#"/* Generated by plugins/abi/tests/header.rs. */
#include <stddef.h>
#include <stdio.h>
#include "t3000_plugin.h"
#include "t3000_plugin.h" /* twice: the include guard holds */

{types}
/* The header's prototype, defined: another name or signature does not compile. */
const T3PluginDecl *{DECLARE_NAME}(void) {{ return 0; }}

/* Each field has the table's C type: a mismatch is an incompatible pointer (an error here). */
void t3_check_types({params});
void t3_check_types({params}) {{
{checks}}}

int main(void) {{
    T3Buf buf;
    T3Sample sample;
    T3PluginDecl decl;
    t3_check_types(&buf, &sample, &decl);
{prints}    return 0;
}}
"#
    )
}

/// What the probe must print, from the crate.
fn expected() -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for r in records() {
        map.insert(format!("{}.size", r.c), r.size.to_string());
        map.insert(format!("{}.align", r.c), r.align.to_string());
        for f in &r.fields {
            map.insert(format!("{}.{}.offset", r.c, f.name), f.offset.to_string());
            map.insert(format!("{}.{}.size", r.c, f.name), f.size.to_string());
            map.insert(format!("{}.{}.align", r.c, f.name), f.align.to_string());
        }
    }
    for a in aliases() {
        map.insert(format!("{}.size", a.c), a.size.to_string());
        map.insert(format!("{}.align", a.c), a.align.to_string());
    }
    for (c, _, value) in constants() {
        let text = match value {
            Value::Int(v) => v.to_string(),
            Value::Str(s) => s.to_owned(),
        };
        map.insert(c.to_owned(), text);
    }
    map
}

fn parse(output: &str) -> BTreeMap<String, String> {
    output
        .lines()
        .map(|line| {
            let (k, v) = line.split_once(' ').unwrap_or_else(|| panic!("probe line without a value: {line:?}"));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

/// Every difference between what the compiler saw and what the crate says.
fn differences(c: &BTreeMap<String, String>, rust: &BTreeMap<String, String>) -> Vec<String> {
    let keys: BTreeSet<&String> = c.keys().chain(rust.keys()).collect();
    keys.into_iter()
        .filter(|k| c.get(*k) != rust.get(*k))
        .map(|k| format!("{k}: header {:?}, crate {:?}", c.get(k), rust.get(k)))
        .collect()
}

/// The fields, in order, cover the record with no gap but alignment padding, and the record ends
/// where its last field does (rounded up to its alignment). `get(key)` reads one side's numbers.
fn tiling(get: &dyn Fn(&str) -> usize) -> Vec<String> {
    let mut faults = Vec::new();
    for r in records() {
        let mut end = 0usize;
        for f in &r.fields {
            let key = |what: &str| format!("{}.{}.{what}", r.c, f.name);
            let (offset, size, align) = (get(&key("offset")), get(&key("size")), get(&key("align")));
            if offset != end.next_multiple_of(align) {
                faults.push(format!(
                    "{}.{} is at {offset}, not right after the field before it (ends at {end})",
                    r.c, f.name
                ));
            }
            end = offset + size;
        }
        let (size, align) = (get(&format!("{}.size", r.c)), get(&format!("{}.align", r.c)));
        if size != end.next_multiple_of(align) {
            faults.push(format!(
                "{} is {size} bytes but its listed fields end at {end}: a field is not in the table",
                r.c
            ));
        }
    }
    faults
}

/// Probe output `out` agrees with the crate, and both sides are fully tiled by the tables.
fn assert_agrees(out: &str, compiler: &str) {
    let c = parse(out);
    let rust = expected();
    let diffs = differences(&c, &rust);
    assert!(diffs.is_empty(), "t3000_plugin.h ({compiler}) and t3-plugin-abi disagree:\n{}", diffs.join("\n"));
    let number = |map: &BTreeMap<String, String>, key: &str| -> usize {
        map.get(key).unwrap_or_else(|| panic!("no {key}")).parse().unwrap_or_else(|e| panic!("{key}: {e}"))
    };
    let faults = tiling(&|k| number(&c, k));
    assert!(faults.is_empty(), "the header's records ({compiler}):\n{}", faults.join("\n"));
    let faults = tiling(&|k| number(&rust, k));
    assert!(faults.is_empty(), "the crate's records:\n{}", faults.join("\n"));
}

#[test]
fn the_header_and_the_crate_agree_on_every_size_offset_type_and_constant() {
    let cc = cc::c_compiler();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("probe.c");
    let exe = dir.path().join("probe");
    std::fs::write(&src, probe_source()).unwrap();
    let include = format!("-I{}", cc::arg(&cc::abi_dir()));
    let strict = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"];
    let mut args = strict.to_vec();
    args.extend([include.as_str(), "-o", cc::arg(&exe), cc::arg(&src)]);
    cc::compile(&cc, &args);
    assert_agrees(&cc::run(&exe), &cc);
}

#[test]
fn the_header_agrees_when_compiled_as_cpp() {
    let Some(cxx) = cc::cxx_compiler() else { return };
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("probe.cpp");
    let exe = dir.path().join("probe");
    std::fs::write(&src, probe_source()).unwrap();
    let include = format!("-I{}", cc::arg(&cc::abi_dir()));
    let flags = ["-x", "c++", "-std=c++11", "-Wall", "-Wextra", "-Werror", "-pedantic", include.as_str()];
    let mut args = flags.to_vec();
    args.extend(["-o", cc::arg(&exe), cc::arg(&src)]);
    cc::compile(&cxx, &args);
    assert_agrees(&cc::run(&exe), &cxx);
}

#[test]
fn the_header_declares_the_symbol_with_c_linkage_in_cpp() {
    let Some(cxx) = cc::cxx_compiler() else { return };
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("linkage.cpp");
    let obj = dir.path().join("linkage.o");
    // Nothing else in this object spells the name: no string literal can pass for the symbol.
    let source = format!("#include \"t3000_plugin.h\"\nconst T3PluginDecl *{DECLARE_NAME}(void) {{ return 0; }}\n");
    std::fs::write(&src, source).unwrap();
    let include = format!("-I{}", cc::arg(&cc::abi_dir()));
    cc::compile(&cxx, &["-x", "c++", "-std=c++11", include.as_str(), "-c", "-o", cc::arg(&obj), cc::arg(&src)]);
    // `extern "C"` in the header: the symbol table has the plain name, not a mangled one
    // (`_Z20t3000_plugin_declarev`).
    let object = std::fs::read(&obj).unwrap();
    let plain = format!("\0{DECLARE_NAME}\0");
    assert!(
        object.windows(plain.len()).any(|w| w == plain.as_bytes()),
        "the C++ object has no unmangled {DECLARE_NAME}: the header's extern \"C\" block is missing"
    );
}

#[test]
fn the_header_compiles_cleanly_alone_in_c_and_cpp() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("alone.c");
    std::fs::write(&src, "#include \"t3000_plugin.h\"\n#include \"t3000_plugin.h\"\n").unwrap();
    let include = format!("-I{}", cc::arg(&cc::abi_dir()));
    let warnings = ["-Wall", "-Wextra", "-Werror", "-pedantic", "-Wshadow", "-Wconversion"];
    let cc = cc::c_compiler();
    for std in ["-std=c99", "-std=c11", "-std=c17"] {
        let mut args = vec!["-fsyntax-only", std, "-Wstrict-prototypes", "-Wmissing-prototypes", include.as_str()];
        args.extend(warnings);
        args.push(cc::arg(&src));
        cc::compile(&cc, &args);
    }
    if let Some(cxx) = cc::cxx_compiler() {
        for std in ["-std=c++11", "-std=c++17"] {
            let mut args = vec!["-fsyntax-only", "-x", "c++", std, include.as_str()];
            args.extend(warnings);
            args.push(cc::arg(&src));
            cc::compile(&cxx, &args);
        }
    }
}

/// `names` of `kind` that `source` has and the table does not, or the table has and `source` not.
fn unlisted(kind: &str, source: BTreeSet<String>, table: BTreeSet<String>) -> Vec<String> {
    let mut out: Vec<String> = source.difference(&table).map(|n| format!("{kind} {n} is not in the table")).collect();
    out.extend(table.difference(&source).map(|n| format!("{kind} {n} is in the table but not in the source")));
    out
}

#[test]
fn every_constant_of_the_header_and_of_the_crate_is_compared() {
    let header = std::fs::read_to_string(cc::abi_dir().join("t3000_plugin.h")).unwrap();
    let defines: BTreeSet<String> = header
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("#define "))
        .filter_map(|rest| rest.split_whitespace().next())
        .filter(|name| *name != "T3000_PLUGIN_H")
        .map(str::to_owned)
        .collect();
    let lib = std::fs::read_to_string(cc::abi_dir().join("src/lib.rs")).unwrap();
    let consts: BTreeSet<String> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("pub const "))
        .filter_map(|rest| rest.split(':').next())
        .map(|name| name.trim().to_owned())
        .collect();
    let mut faults = unlisted("#define", defines, constants().iter().map(|c| c.0.to_owned()).collect());
    faults.extend(unlisted("pub const", consts, constants().iter().map(|c| c.1.to_owned()).collect()));
    assert!(faults.is_empty(), "{}", faults.join("\n"));
}

#[test]
fn the_symbol_the_probe_defines_is_the_crates() {
    assert_eq!(abi::DECLARE_SYMBOL, DECLARE_NAME);
}
