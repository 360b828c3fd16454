//! Every WGSL file in shaders/ parses and validates with naga, and every one is compiled into a crate.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benches fail loudly by design

use std::path::Path;

#[test]
fn every_shader_validates_with_naga() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("wgsl") {
            continue;
        }
        let source = std::fs::read_to_string(&path).unwrap();
        let module = naga::front::wgsl::parse_str(&source)
            .unwrap_or_else(|e| panic!("{}: {}", path.display(), e.emit_to_string(&source)));
        naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::all())
            .validate(&module)
            .unwrap_or_else(|e| panic!("{}: {}", path.display(), e.emit_to_string(&source)));
        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(
            cs_render::SHADERS.iter().any(|(n, s)| *n == name && *s == source),
            "{name} is not listed in cs_render::SHADERS (or differs from the compiled-in copy)"
        );
        checked += 1;
    }
    assert!(checked >= 1, "no shaders found in {}", dir.display());
    assert_eq!(
        checked,
        cs_render::SHADERS.len(),
        "cs_render::SHADERS lists a file that is not in shaders/"
    );
}

#[test]
fn broken_wgsl_is_rejected() {
    // The check above must be able to fail.
    let source = "@fragment fn fs_main() -> @location(0) vec4<f32> { return vec3<f32>(1.0); }";
    let module = naga::front::wgsl::parse_str(source);
    let valid = module.ok().map(|m| {
        naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::all())
            .validate(&m)
            .is_ok()
    });
    assert_ne!(valid, Some(true));
}
