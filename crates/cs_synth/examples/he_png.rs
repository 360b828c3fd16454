//! Writes a PNG of a region of a synthetic slide, read back through OpenSlide:
//! `cargo run -p cs_synth --example he_png -- SLIDE OUT.png [X Y W H [LEVEL]]` (level-0 pixels;
//! without a region, the whole coarsest level).

use cs_slide::{OpenSlideSource, SlideSource};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let slide = OpenSlideSource::open(args.first().ok_or("slide path missing")?)?;
    let out = args.get(1).ok_or("output path missing")?;
    let meta = slide.metadata();
    println!("vendor {} levels {:?} mpp {:?}", meta.vendor, meta.levels, meta.mpp());
    let numbers: Vec<u64> = args[2..].iter().map(|a| a.parse()).collect::<Result<_, _>>()?;
    let image = match numbers[..] {
        [x, y, w, h] => slide.read_region((x, y), 0, w as u32, h as u32)?,
        [x, y, w, h, level] => slide.read_region((x, y), level as usize, w as u32, h as u32)?,
        _ => {
            let level = meta.levels.len() - 1;
            let l = meta.levels[level];
            slide.read_region((0, 0), level, l.width_px as u32, l.height_px as u32)?
        }
    };
    image::save_buffer(out, &image.pixels, image.width, image.height, image::ColorType::Rgba8)?;
    Ok(())
}
