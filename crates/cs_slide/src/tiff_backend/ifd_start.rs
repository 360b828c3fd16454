//! A reader that shows a TIFF file whose header points at a chosen IFD.
//!
//! The `tiff` crate decodes only the images of the main IFD chain; OME-TIFF pyramids keep their
//! reduced levels in SubIFDs. Every offset in a TIFF is absolute, so presenting the same bytes
//! with the header's first-IFD offset replaced makes any IFD (a SubIFD included) image 0 of a
//! `tiff::decoder::Decoder`, with no parsing of our own.

use std::io::{Read, Seek, SeekFrom};

pub(crate) struct IfdStart<R> {
    inner: R,
    header: Vec<u8>,
    position: u64,
}

impl<R: Read + Seek> IfdStart<R> {
    /// `header`: the file's own first 8 (classic) or 16 (BigTIFF) bytes.
    pub fn new(inner: R, header: &[u8], ifd_offset: u64) -> std::io::Result<Self> {
        let invalid = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
        if header.len() < 8 {
            return Err(invalid("the TIFF header is shorter than 8 bytes"));
        }
        let little_endian = match &header[0..2] {
            b"II" => true,
            b"MM" => false,
            _ => return Err(invalid("not a TIFF file (no II or MM byte order mark)")),
        };
        let magic = if little_endian {
            u16::from_le_bytes([header[2], header[3]])
        } else {
            u16::from_be_bytes([header[2], header[3]])
        };
        let mut patched = match magic {
            42 => header[..8].to_vec(),
            43 if header.len() >= 16 => header[..16].to_vec(),
            _ => return Err(invalid("not a TIFF or BigTIFF header")),
        };
        if magic == 42 {
            let offset =
                u32::try_from(ifd_offset).map_err(|_| invalid("an IFD offset past 4 GiB in a classic TIFF"))?;
            let bytes = if little_endian {
                offset.to_le_bytes()
            } else {
                offset.to_be_bytes()
            };
            patched[4..8].copy_from_slice(&bytes);
        } else {
            let bytes = if little_endian {
                ifd_offset.to_le_bytes()
            } else {
                ifd_offset.to_be_bytes()
            };
            patched[8..16].copy_from_slice(&bytes);
        }
        let mut inner = inner;
        inner.seek(SeekFrom::Start(0))?;
        Ok(Self {
            inner,
            header: patched,
            position: 0,
        })
    }
}

impl<R: Read + Seek> Read for IfdStart<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let header_len = self.header.len() as u64;
        if self.position < header_len {
            let start = self.position as usize;
            let n = buf.len().min(self.header.len() - start);
            buf[..n].copy_from_slice(&self.header[start..start + n]);
            self.position += n as u64;
            self.inner.seek(SeekFrom::Start(self.position))?;
            return Ok(n);
        }
        let n = self.inner.read(buf)?;
        self.position += n as u64;
        Ok(n)
    }
}

impl<R: Read + Seek> Seek for IfdStart<R> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        self.position = self.inner.seek(to)?;
        Ok(self.position)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn the_header_points_at_the_chosen_ifd_and_the_rest_is_untouched() {
        let mut file = b"II*\0\x08\0\0\0".to_vec();
        file.extend_from_slice(&[1, 2, 3, 4]);
        let mut reader = IfdStart::new(Cursor::new(file), b"II*\0\x08\0\0\0", 0x0102_0304).unwrap();
        let mut all = Vec::new();
        reader.read_to_end(&mut all).unwrap();
        assert_eq!(all, [b'I', b'I', 42, 0, 4, 3, 2, 1, 1, 2, 3, 4]);
        reader.seek(SeekFrom::Start(9)).unwrap();
        let mut one = [0u8; 1];
        reader.read_exact(&mut one).unwrap();
        assert_eq!(one, [2]);

        let big_header = [b'M', b'M', 0, 43, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 16];
        let mut reader = IfdStart::new(Cursor::new(big_header.to_vec()), &big_header, 0x1_0000_0000).unwrap();
        let mut all = Vec::new();
        reader.read_to_end(&mut all).unwrap();
        assert_eq!(&all[8..16], &[0, 0, 0, 1, 0, 0, 0, 0]);
        assert!(IfdStart::new(Cursor::new(Vec::new()), b"GIF89a\0\0", 8).is_err());
    }
}
