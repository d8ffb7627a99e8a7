//! Serving artifacts of models (a recommendation model's item side is tens of megabytes at
//! the seed size, gigabytes at scale): files under `<lake>/models/`, recorded in the control
//! plane's `model_files`. A file is written under a temporary name, flushed and renamed, then
//! recorded, so a recorded file is always whole.

use std::path::PathBuf;

use super::{Lake, LakeError, Result, io};
use crate::db::repo::recommend as registry;

/// Stores model `model_id`'s artifact in `format`, and removes those of models that can no
/// longer serve (`registry::record_model_file` says which).
pub async fn store(lake: &Lake, model_id: i64, format: &str, bytes: Vec<u8>) -> Result {
    let rel = format!("models/model-{model_id}-{:08x}.bin", rand::random::<u32>());
    let path = lake.abs(&rel);
    let size = bytes.len() as i64;
    let target = path.clone();
    tokio::task::spawn_blocking(move || write_whole(&target, &bytes))
        .await
        .map_err(|e| LakeError::Other(format!("model file writer failed: {e}")))??;
    let dropped = registry::record_model_file(lake.db(), model_id, format, &rel, size).await?;
    for old in dropped {
        remove(&lake.abs(&old))?;
    }
    Ok(())
}

/// Model `model_id`'s artifact, if one in `format` is recorded.
pub async fn load(lake: &Lake, model_id: i64, format: &str) -> Result<Option<Vec<u8>>> {
    let Some(rel) = registry::model_file(lake.db(), model_id, format).await? else {
        return Ok(None);
    };
    let path = lake.abs(&rel);
    let read = path.clone();
    match tokio::task::spawn_blocking(move || std::fs::read(&read))
        .await
        .map_err(|e| LakeError::Other(format!("model file reader failed: {e}")))?
    {
        Ok(bytes) => Ok(Some(bytes)),
        // A newer champion's run removed it between the lookup and the read.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(&path)(e)),
    }
}

/// Whether model `model_id` has an artifact in `format` recorded.
pub async fn has(lake: &Lake, model_id: i64, format: &str) -> Result<bool> {
    Ok(registry::model_file(lake.db(), model_id, format)
        .await?
        .is_some())
}

fn write_whole(path: &PathBuf, bytes: &[u8]) -> Result {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let tmp = path.with_extension("bin.tmp");
    let mut file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    file.write_all(bytes).map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(io(path))
}

fn remove(path: &PathBuf) -> Result {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(path)(e)),
        _ => Ok(()),
    }
}
