//! Why a run could not even start.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::typing::LoadError;

#[derive(Debug)]
pub enum StartError {
    CreateLog { path: PathBuf, source: io::Error },
    StartQemu { program: String, source: io::Error },
    OpenSerial { device: String, source: serialport::Error },
    LoadSession { path: PathBuf, error: LoadError },
    CloneSerial { device: String, source: serialport::Error },
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::CreateLog { path, source } => {
                write!(f, "cannot create the log {}: {source}", path.display())
            }
            StartError::StartQemu { program, source } => {
                write!(f, "cannot start {program}: {source}")
            }
            StartError::OpenSerial { device, source } => {
                write!(f, "cannot open {device}: {source}")
            }
            StartError::LoadSession { path, error } => {
                write!(f, "cannot use the session {}: {error}", path.display())
            }
            StartError::CloneSerial { device, source } => {
                write!(f, "cannot open {device} for typing: {source}")
            }
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::CreateLog { source, .. } | StartError::StartQemu { source, .. } => Some(source),
            StartError::OpenSerial { source, .. } | StartError::CloneSerial { source, .. } => Some(source),
            StartError::LoadSession { error: LoadError::Read(source), .. } => Some(source),
            StartError::LoadSession { error: LoadError::Parse(error), .. } => Some(error),
        }
    }
}
