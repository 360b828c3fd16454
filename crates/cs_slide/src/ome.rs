//! OME-XML, as OME-TIFF writers (Bio-Formats, tifffile, 10x's Xenium software) put it in the first
//! IFD's ImageDescription: the first image's size, pixel type, physical pixel size, channels and
//! the plane layout (`TiffData`: which IFD of which file holds which channel, z and t).

use quick_xml::events::{BytesStart, Event};

/// One `<Channel>` of the first image.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OmeChannel {
    pub name: Option<String>,
    /// Samples per pixel of this channel (3 for an interleaved RGB plane).
    pub samples_per_pixel: u32,
    /// `Color` as RGBA, when given.
    pub color_rgba: Option<[u8; 4]>,
}

/// One `<TiffData>`: `plane_count` planes starting at (`first_c`, `first_z`, `first_t`) are
/// stored from IFD `ifd` on, in the file named `file_name` (this file when absent).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OmeTiffData {
    pub ifd: u32,
    pub first_c: u32,
    pub first_z: u32,
    pub first_t: u32,
    pub plane_count: Option<u32>,
    pub file_name: Option<String>,
}

/// The first `<Image>`'s `<Pixels>`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OmePixels {
    pub size_x: u64,
    pub size_y: u64,
    pub size_c: u32,
    pub size_z: u32,
    pub size_t: u32,
    /// `XYCZT`, `XYZCT`, ...
    pub dimension_order: String,
    /// `uint8`, `uint16`, ...
    pub pixel_type: String,
    /// Micrometres per pixel, converted from the unit given (µm when none is).
    pub physical_size_x_um: Option<f64>,
    pub physical_size_y_um: Option<f64>,
    pub channels: Vec<OmeChannel>,
    pub tiff_data: Vec<OmeTiffData>,
}

impl OmePixels {
    /// The IFD index of plane (c, z, t) in this file by the dimension order, the way OME-TIFF lays
    /// planes out when no `TiffData` says otherwise.
    pub fn ifd_by_dimension_order(&self, c: u32, z: u32, t: u32) -> u64 {
        let (size_c, size_z, size_t) = (
            u64::from(self.size_c.max(1)),
            u64::from(self.size_z.max(1)),
            u64::from(self.size_t.max(1)),
        );
        let (c, z, t) = (u64::from(c), u64::from(z), u64::from(t));
        match self.dimension_order.as_str() {
            "XYZCT" => z + size_z * (c + size_c * t),
            "XYZTC" => z + size_z * (t + size_t * c),
            "XYCTZ" => c + size_c * (t + size_t * z),
            "XYTCZ" => t + size_t * (c + size_c * z),
            "XYTZC" => t + size_t * (z + size_z * c),
            // XYCZT, and the default.
            _ => c + size_c * (z + size_z * t),
        }
    }

    /// Where plane (c, z=0, t=0) lives: (file name, None for this file; IFD index), from the
    /// `TiffData` elements when they cover it, else by the dimension order.
    pub fn locate_channel(&self, c: u32) -> (Option<&str>, u64) {
        for data in &self.tiff_data {
            // Planes within one TiffData run in dimension order from its first plane.
            let first = self.ifd_by_dimension_order(data.first_c, data.first_z, data.first_t);
            let wanted = self.ifd_by_dimension_order(c, 0, 0);
            let count = u64::from(data.plane_count.unwrap_or(1).max(1));
            if wanted >= first && wanted < first + count {
                return (data.file_name.as_deref(), u64::from(data.ifd) + (wanted - first));
            }
        }
        (None, self.ifd_by_dimension_order(c, 0, 0))
    }
}

/// Whether an ImageDescription is OME-XML.
pub fn is_ome_xml(description: &str) -> bool {
    let head = description.trim_start();
    (head.starts_with("<?xml") || head.starts_with("<OME")) && description.contains("<OME")
}

/// Parses the first image's pixels of an OME-XML document.
pub fn parse_ome_xml(xml: &str) -> Result<OmePixels, String> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut pixels: Option<OmePixels> = None;
    let mut image_depth = 0usize; // > 0 while inside the first <Image>
    let mut in_tiff_data = false;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("the OME-XML is not well-formed: {e}"))?;
        match event {
            Event::Start(start) if image_depth == 0 && local_name(&start) == "Image" => image_depth = 1,
            Event::Start(_) | Event::Empty(_) if image_depth == 0 => {}
            Event::Start(ref start) | Event::Empty(ref start) => {
                let empty = matches!(event, Event::Empty(_));
                if !empty {
                    image_depth += 1;
                }
                match local_name(start).as_str() {
                    "Pixels" => pixels = Some(parse_pixels(start)?),
                    "Channel" => {
                        if let Some(pixels) = pixels.as_mut() {
                            pixels.channels.push(OmeChannel {
                                name: attribute(start, "Name").filter(|n| !n.trim().is_empty()),
                                samples_per_pixel: number(start, "SamplesPerPixel")?.unwrap_or(1),
                                color_rgba: attribute(start, "Color")
                                    .and_then(|c| c.trim().parse::<i32>().ok())
                                    .map(|c| c.to_be_bytes()),
                            });
                        }
                    }
                    "TiffData" => {
                        if let Some(pixels) = pixels.as_mut() {
                            pixels.tiff_data.push(OmeTiffData {
                                ifd: number(start, "IFD")?.unwrap_or(0),
                                first_c: number(start, "FirstC")?.unwrap_or(0),
                                first_z: number(start, "FirstZ")?.unwrap_or(0),
                                first_t: number(start, "FirstT")?.unwrap_or(0),
                                plane_count: number(start, "PlaneCount")?,
                                file_name: None,
                            });
                            in_tiff_data = !empty;
                        }
                    }
                    "UUID" if in_tiff_data => {
                        if let Some(data) = pixels.as_mut().and_then(|p| p.tiff_data.last_mut()) {
                            data.file_name = attribute(start, "FileName");
                        }
                    }
                    _ => {}
                }
            }
            Event::End(end) if image_depth > 0 => {
                if end.local_name().as_ref() == b"TiffData" {
                    in_tiff_data = false;
                }
                image_depth -= 1;
                if image_depth == 0 {
                    break;
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let pixels = pixels.ok_or("the OME-XML has no <Pixels> in its first <Image>")?;
    if pixels.size_x == 0 || pixels.size_y == 0 {
        return Err(format!(
            "the OME-XML gives an empty image ({}x{} px)",
            pixels.size_x, pixels.size_y
        ));
    }
    Ok(pixels)
}

fn local_name(start: &BytesStart) -> String {
    String::from_utf8_lossy(start.local_name().as_ref()).into_owned()
}

fn attribute(start: &BytesStart, name: &str) -> Option<String> {
    start
        .attributes()
        .flatten()
        .find(|a| a.key.local_name().as_ref() == name.as_bytes())
        .and_then(|a| {
            a.normalized_value(quick_xml::XmlVersion::default())
                .ok()
                .map(|v| v.into_owned())
        })
}

fn number<T: std::str::FromStr>(start: &BytesStart, name: &str) -> Result<Option<T>, String> {
    match attribute(start, name) {
        None => Ok(None),
        Some(text) => text
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| format!("the OME-XML's {name}={text:?} is not a number")),
    }
}

fn parse_pixels(start: &BytesStart) -> Result<OmePixels, String> {
    let size = |name: &str| -> Result<u64, String> {
        number::<u64>(start, name)?.ok_or_else(|| format!("the OME-XML's <Pixels> has no {name}"))
    };
    let physical = |name: &str| -> Result<Option<f64>, String> {
        let Some(value) = number::<f64>(start, name)? else {
            return Ok(None);
        };
        let unit = attribute(start, &format!("{name}Unit")).unwrap_or_else(|| "µm".to_owned());
        let um_per_unit = match unit.trim() {
            "µm" | "um" | "μm" | "micron" | "microns" => 1.0,
            "nm" => 1e-3,
            "mm" => 1e3,
            "cm" => 1e4,
            "m" => 1e6,
            "pm" => 1e-6,
            other => return Err(format!("the OME-XML's {name}Unit {other:?} is not a length unit")),
        };
        let um = value * um_per_unit;
        Ok((um.is_finite() && um > 0.0).then_some(um))
    };
    Ok(OmePixels {
        size_x: size("SizeX")?,
        size_y: size("SizeY")?,
        size_c: number(start, "SizeC")?.unwrap_or(1),
        size_z: number(start, "SizeZ")?.unwrap_or(1),
        size_t: number(start, "SizeT")?.unwrap_or(1),
        dimension_order: attribute(start, "DimensionOrder").unwrap_or_else(|| "XYCZT".to_owned()),
        pixel_type: attribute(start, "Type").unwrap_or_default(),
        physical_size_x_um: physical("PhysicalSizeX")?,
        physical_size_y_um: physical("PhysicalSizeY")?,
        channels: Vec::new(),
        tiff_data: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const XENIUM_2: &str = r#"<?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06"><Image ID="Image:0" Name="morphology_focus"><Pixels DimensionOrder="XYCZT" ID="Pixels:0" SizeC="4" SizeT="1" SizeX="512" SizeY="256" SizeZ="1" Type="uint16" PhysicalSizeX="212.5" PhysicalSizeXUnit="nm" PhysicalSizeY="0.2125"><Channel ID="Channel:0:0" Name="DAPI" SamplesPerPixel="1" Color="-16776961"/><Channel ID="Channel:0:1" Name="ATP1A1/CD45/E-Cadherin"/><Channel ID="Channel:0:2" Name="18S"/><Channel ID="Channel:0:3" Name="AlphaSMA/Vimentin"/><TiffData FirstC="0" IFD="0" PlaneCount="1"><UUID FileName="morphology_focus_0000.ome.tif">urn:uuid:a</UUID></TiffData><TiffData FirstC="1" IFD="0" PlaneCount="1"><UUID FileName="morphology_focus_0001.ome.tif">urn:uuid:b</UUID></TiffData></Pixels></Image><Image ID="Image:1"><Pixels SizeX="5" SizeY="5"/></Image></OME>"#;

    #[test]
    fn reads_the_first_image_channels_units_and_files() {
        let pixels = parse_ome_xml(XENIUM_2).unwrap();
        assert_eq!((pixels.size_x, pixels.size_y, pixels.size_c), (512, 256, 4));
        assert_eq!(pixels.pixel_type, "uint16");
        assert!(
            (pixels.physical_size_x_um.unwrap() - 0.2125).abs() < 1e-12,
            "nm converted to µm"
        );
        assert!(
            (pixels.physical_size_y_um.unwrap() - 0.2125).abs() < 1e-12,
            "µm by default"
        );
        let names: Vec<_> = pixels.channels.iter().map(|c| c.name.clone().unwrap()).collect();
        assert_eq!(names, ["DAPI", "ATP1A1/CD45/E-Cadherin", "18S", "AlphaSMA/Vimentin"]);
        assert_eq!(pixels.channels[0].color_rgba, Some([255, 0, 0, 255]));
        assert_eq!(pixels.locate_channel(1), (Some("morphology_focus_0001.ome.tif"), 0));
        // Channel 3 has no TiffData: by dimension order, IFD 3 of this file.
        assert_eq!(pixels.locate_channel(3), (None, 3));
    }

    #[test]
    fn dimension_orders_place_planes() {
        let pixels = OmePixels {
            size_c: 3,
            size_z: 5,
            size_t: 1,
            dimension_order: "XYZCT".to_owned(),
            ..OmePixels::default()
        };
        assert_eq!(pixels.ifd_by_dimension_order(2, 0, 0), 10);
        let xyczt = OmePixels {
            dimension_order: "XYCZT".to_owned(),
            ..pixels
        };
        assert_eq!(xyczt.ifd_by_dimension_order(2, 1, 0), 5);
    }

    #[test]
    fn bad_documents_say_what_is_wrong() {
        assert!(
            parse_ome_xml("<OME><Image><Pixels SizeX='x' SizeY='2'/></Image></OME>")
                .unwrap_err()
                .contains("SizeX")
        );
        assert!(
            parse_ome_xml("<OME><Image></Image></OME>")
                .unwrap_err()
                .contains("no <Pixels>")
        );
        assert!(
            parse_ome_xml(
                "<OME><Image><Pixels SizeX='4' SizeY='4' PhysicalSizeX='1' PhysicalSizeXUnit='parsec'/></Image></OME>"
            )
            .unwrap_err()
            .contains("parsec")
        );
        assert!(is_ome_xml("<?xml version=\"1.0\"?><OME/>"));
        assert!(!is_ome_xml("Aperio Image Library"));
    }
}
