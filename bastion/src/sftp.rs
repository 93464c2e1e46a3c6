//! SFTP packet parsing for file-operation audit events (see `FileOps`).
