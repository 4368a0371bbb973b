//! File I/O: write a file three ways, read it back, verify, remove it.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use numa_rt::fs::{self, File};
use numa_rt::time::Instant;

use crate::pattern::{fill, mismatch, Rng};
use crate::Soak;

/// Largest file written.
const MAX_FILE: u64 = 256 * 1024;

/// Writes, reads back and removes files in the soak's folder until
/// `deadline`.
pub async fn files(soak: Arc<Soak>, stream: u64, deadline: Instant) {
    let mut rng = Rng::new(soak.seed ^ 0xf11e, stream);
    let mut n = 0u64;
    while Instant::now() < deadline {
        n += 1;
        let path = soak.dir.join(format!("s{stream}-{n}"));
        let len = rng.below(MAX_FILE + 1) as usize;
        let key = rng.next_u64();
        let how = rng.below(3);
        match round_trip(&path, key, len, how, &mut rng).await {
            Ok(()) => {
                soak.ledger.files.inc();
                soak.ledger.file_bytes.add(len as u64);
            }
            Err(e) => {
                soak.ledger.fail(format!(
                    "file {} ({len} bytes, way {how}): {e}",
                    path.display()
                ));
                return;
            }
        }
    }
}

/// Writes `len` bytes of pattern `key` to `path` one of three ways,
/// reads them back, checks them, and removes the file.
async fn round_trip(
    path: &PathBuf,
    key: u64,
    len: usize,
    how: u64,
    rng: &mut Rng,
) -> io::Result<()> {
    let mut data = Vec::with_capacity(len);
    fill(&mut data, key, 0, len);
    let back = match how {
        // Whole-file helpers.
        0 => {
            fs::write(path, &data).await?;
            fs::read(path).await?
        }
        // Positioned writes, second half first, then positioned reads in
        // random pieces.
        1 => {
            let mid = len / 2;
            let f = File::create(path).await?;
            let (r, _) = f.write_all_at(data[mid..].to_vec(), mid as u64).await;
            r?;
            let (r, _) = f.write_all_at(data[..mid].to_vec(), 0).await;
            r?;
            if rng.chance(10) {
                f.sync_data().await?;
            }
            drop(f);
            let f = File::open(path).await?;
            let mut back = Vec::with_capacity(len);
            loop {
                let piece = Vec::with_capacity(rng.range(1, 64 * 1024) as usize);
                let (r, piece) = f.read_at(piece, back.len() as u64).await;
                if r? == 0 {
                    break;
                }
                back.extend_from_slice(&piece);
            }
            back
        }
        // A cursor: write_all_owned, then read_to_end_owned.
        _ => {
            let mut f = File::create(path).await?;
            let (r, _) = f.write_all_owned(data).await;
            r?;
            drop(f);
            let mut f = File::open(path).await?;
            let (r, back) = f.read_to_end_owned(Vec::new()).await;
            r?;
            back
        }
    };
    if back.len() != len {
        return Err(io::Error::other(format!("read back {} bytes", back.len())));
    }
    if let Some(i) = mismatch(&back, key, 0) {
        return Err(io::Error::other(format!("byte {i} differs when read back")));
    }
    fs::remove_file(path).await
}
