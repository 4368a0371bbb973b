//! fs: tokio::fs's path functions and metadata on both drivers (ring
//! operations MKDIRAT, UNLINKAT, RENAMEAT, LINKAT, SYMLINKAT, STATX on
//! io_uring; the blocking pool on epoll), on both runtime flavors.

mod io_common;

use std::io::ErrorKind;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use io_common::on_all;
use numa_rt_runtime::fs::{self, File};

fn tmp() -> Arc<tempfile::TempDir> {
    Arc::new(tempfile::tempdir().unwrap())
}

/// A fresh folder per run (each test body runs several times).
fn fresh(dir: &tempfile::TempDir) -> std::path::PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let p = dir
        .path()
        .join(format!("run-{}", NEXT.fetch_add(1, Ordering::Relaxed)));
    std::fs::create_dir(&p).unwrap();
    p
}

#[test]
fn create_and_remove_directories() {
    let dir = tmp();
    on_all(move || {
        let dir = dir.clone();
        async move {
            let root = fresh(&dir);
            let a = root.join("a");
            fs::create_dir(&a).await.unwrap();
            assert!(std::fs::metadata(&a).unwrap().is_dir());
            let e = fs::create_dir(&a).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::AlreadyExists);
            let e = fs::create_dir(root.join("x/y")).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::NotFound);

            let deep = root.join("b/c/d/e");
            fs::create_dir_all(&deep).await.unwrap();
            assert!(std::fs::metadata(&deep).unwrap().is_dir());
            // Again: already there is fine.
            fs::create_dir_all(&deep).await.unwrap();
            fs::create_dir_all(&a).await.unwrap();
            // A file in the way is an error.
            std::fs::write(root.join("file"), b"x").unwrap();
            assert!(fs::create_dir_all(root.join("file/sub")).await.is_err());
            assert!(fs::create_dir_all(root.join("file")).await.is_err());

            // A non-empty directory is not removed by remove_dir.
            let e = fs::remove_dir(root.join("b")).await.unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::ENOTEMPTY));
            fs::remove_dir(&deep).await.unwrap();
            assert!(!deep.exists());
            // remove_dir on a file, remove_file on a directory.
            assert!(fs::remove_dir(root.join("file")).await.is_err());
            assert!(fs::remove_file(&a).await.is_err());
            fs::remove_file(root.join("file")).await.unwrap();
            let e = fs::remove_file(root.join("file")).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::NotFound);
            fs::remove_dir_all(root.join("b")).await.unwrap();
            assert!(!root.join("b").exists());
        }
    });
}

#[test]
fn rename_links_and_symlinks() {
    let dir = tmp();
    on_all(move || {
        let dir = dir.clone();
        async move {
            let root = fresh(&dir);
            let one = root.join("one");
            std::fs::write(&one, b"first").unwrap();
            let two = root.join("two");
            std::fs::write(&two, b"second").unwrap();
            // Rename replaces the target.
            fs::rename(&one, &two).await.unwrap();
            assert!(!one.exists());
            assert_eq!(std::fs::read(&two).unwrap(), b"first");
            let e = fs::rename(&one, &two).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::NotFound);

            let hard = root.join("hard");
            fs::hard_link(&two, &hard).await.unwrap();
            let (m1, m2) = (
                std::fs::metadata(&two).unwrap(),
                std::fs::metadata(&hard).unwrap(),
            );
            assert_eq!((m1.ino(), m1.nlink()), (m2.ino(), 2));
            let e = fs::hard_link(&two, &hard).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::AlreadyExists);

            let soft = root.join("soft");
            fs::symlink("two", &soft).await.unwrap();
            assert_eq!(
                fs::read_link(&soft).await.unwrap(),
                std::path::Path::new("two")
            );
            assert_eq!(fs::read(&soft).await.unwrap(), b"first");
            let link_meta = fs::symlink_metadata(&soft).await.unwrap();
            assert!(link_meta.is_symlink() && link_meta.file_type().is_symlink());
            assert_eq!(link_meta.len(), 3, "a link's size is its target's length");
            let followed = fs::metadata(&soft).await.unwrap();
            assert!(followed.is_file() && !followed.is_symlink());
            assert_eq!(followed.ino(), m1.ino());
            assert_eq!(
                fs::canonicalize(&soft).await.unwrap(),
                std::fs::canonicalize(&two).unwrap()
            );

            // A dangling link: exists as a link, not as a target.
            let dangling = root.join("dangling");
            fs::symlink(root.join("nowhere"), &dangling).await.unwrap();
            assert!(!fs::try_exists(&dangling).await.unwrap());
            assert!(fs::symlink_metadata(&dangling).await.is_ok());
            assert!(fs::try_exists(&two).await.unwrap());
            let e = fs::metadata(&dangling).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::NotFound);
            assert_eq!(
                fs::metadata("a\0b").await.unwrap_err().kind(),
                ErrorKind::InvalidInput
            );

            assert_eq!(fs::copy(&two, root.join("copy")).await.unwrap(), 5);
            let mut names: Vec<String> = fs::read_dir(&root)
                .await
                .unwrap()
                .into_iter()
                .map(|e| e.file_name().into_string().unwrap())
                .collect();
            names.sort();
            assert_eq!(names, ["copy", "dangling", "hard", "soft", "two"]);
        }
    });
}

#[test]
fn metadata_matches_std() {
    let dir = tmp();
    on_all(move || {
        let dir = dir.clone();
        async move {
            let root = fresh(&dir);
            let path = root.join("data");
            std::fs::write(&path, vec![7u8; 12_345]).unwrap();
            fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640))
                .await
                .unwrap();
            let std_meta = std::fs::metadata(&path).unwrap();
            let by_path = fs::metadata(&path).await.unwrap();
            let file = File::open(&path).await.unwrap();
            let by_file = file.metadata().await.unwrap();
            for m in [&by_path, &by_file] {
                assert_eq!(m.len(), 12_345);
                assert!(m.is_file() && !m.is_dir());
                assert_eq!(m.permissions().mode() & 0o777, 0o640);
                assert_eq!(m.mode(), std_meta.mode());
                assert_eq!(m.ino(), std_meta.ino());
                assert_eq!(m.dev(), std_meta.dev());
                assert_eq!((m.uid(), m.gid()), (std_meta.uid(), std_meta.gid()));
                assert_eq!(m.blocks(), std_meta.blocks());
                assert_eq!(m.modified().unwrap(), std_meta.modified().unwrap());
                assert_eq!(m.accessed().unwrap(), std_meta.accessed().unwrap());
                assert_eq!(m.created().ok(), std_meta.created().ok());
                assert_eq!(
                    (m.ctime(), m.ctime_nsec()),
                    (std_meta.ctime(), std_meta.ctime_nsec())
                );
            }
            let d = fs::metadata(&root).await.unwrap();
            assert!(d.is_dir() && d.file_type().is_dir());
            let null = fs::metadata("/dev/null").await.unwrap();
            assert!(null.file_type().is_char_device());
            assert_eq!(null.rdev(), std::fs::metadata("/dev/null").unwrap().rdev());
            // Metadata follows the open file, not the name.
            std::fs::remove_file(&path).unwrap();
            assert_eq!(file.metadata().await.unwrap().nlink(), 0);
            assert!(!fs::try_exists(&path).await.unwrap());
        }
    });
}
