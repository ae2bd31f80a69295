//! mem link.
